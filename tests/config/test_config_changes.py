"""What a reload changes, as the daemon acts on it: compared from two real configurations."""

from __future__ import annotations

from pathlib import Path

from daemon.config import Config, load_config
from daemon.config.changes import config_changes


def config(tmp_path: Path, name: str, body: str) -> Config:
    for folder in ("a", "b", "c", "state"):
        (tmp_path / folder).mkdir(exist_ok=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        "symbl: {base_url: 'http://127.0.0.1:9', app_id: a, app_secret: secret-123456}\n"
        f"state_dir: {tmp_path / 'state'}\n" + body
    )
    return load_config(path)


def test_inboxes_profiles_and_settings_that_changed_are_named(tmp_path: Path) -> None:
    old = config(
        tmp_path,
        "old",
        "profiles: {p: {params: {languageCode: en-US}}, q: {params: {}}}\n"
        f"inboxes: [{{path: {tmp_path / 'a'}, profile: p}},"
        f" {{path: {tmp_path / 'b'}, profile: q}}]\n",
    )
    new = config(
        tmp_path,
        "new",
        "log_level: debug\n"
        "profiles: {p: {params: {languageCode: de-DE}}, q: {params: {}}}\n"
        f"inboxes: [{{path: {tmp_path / 'b'}, profile: q, settle_seconds: 9}},"
        f" {{path: {tmp_path / 'c'}, profile: p}}]\n",
    )
    change = config_changes(old, new)
    assert change.inboxes_removed == (str(tmp_path / "a"),)
    assert change.inboxes_changed == (str(tmp_path / "b"),)
    assert change.inboxes_added == (str(tmp_path / "c"),)
    assert change.profiles_changed == {"p"}
    assert change.log_level and not change.symbl and not change.http and not change.hooks
    assert not change.state_dir


def test_the_same_configuration_changes_nothing(tmp_path: Path) -> None:
    body = f"profiles: {{p: {{params: {{}}}}}}\ninboxes: [{{path: {tmp_path / 'a'}, profile: p}}]\n"
    change = config_changes(config(tmp_path, "one", body), config(tmp_path, "two", body))
    assert change.inboxes_removed == change.inboxes_added == change.inboxes_changed == ()
    assert not (change.symbl or change.http or change.hooks or change.log_level)
    assert change.profiles_changed == frozenset()
