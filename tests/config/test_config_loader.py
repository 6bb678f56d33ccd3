"""Valid configurations: what the loader resolves and what ``check-config`` prints."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from config_harness import SECRET, VALID, Outcome

from daemon.config import (
    Config,
    ConfigError,
    ConfigProblem,
    YamlDocument,
    load_config,
    load_yaml_document,
)
from daemon.logs import MASK

ENV = {"SYMBL_APP_ID": "app-from-env"}


def load(path: Path, environ: dict[str, str] | None = None, **kwargs: bool) -> Config:
    return load_config(path, environ=ENV if environ is None else environ, **kwargs)


class TestCheckConfigOutput:
    """A valid file exits 0 and prints the effective configuration, never a secret."""

    def test_valid_exits_zero_without_secret(
        self, write_config: Callable[[str], Path], check_config: Callable[[Path], Outcome]
    ) -> None:
        outcome = check_config(write_config(VALID))

        assert outcome.code == 0
        assert outcome.errors == []
        assert SECRET not in outcome.out
        printed = yaml.safe_load(outcome.out)
        assert printed["symbl"]["app_secret"] == MASK
        assert printed["symbl"]["app_id"] == "test-app"
        assert printed["inboxes"][0]["profile"] == "default"

    def test_secret_file_and_webhook_secret_masked(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        (folder / "app-secret").write_text("from-a-file-secret\n", encoding="utf-8")
        path = write_config(
            """\
            symbl:
              app_id: test-app
              app_secret_file: app-secret
            state_dir: state
            profiles: {default: {params: {name: from-a-file-secret}}}
            inboxes: [{path: inbox, profile: default}]
            http:
              listen: 127.0.0.1:8080
              webhook_secret: webhook-secret-value
            """
        )

        outcome = check_config(path, "--json")

        assert outcome.code == 0
        assert "from-a-file-secret" not in outcome.out
        assert "webhook-secret-value" not in outcome.out
        printed = json.loads(outcome.out)
        assert printed["symbl"]["app_secret"] == MASK
        assert printed["http"]["webhook_secret"] == MASK
        assert printed["profiles"]["default"]["params"]["name"] == MASK

    def test_secret_read_from_file_without_newline(
        self, folder: Path, write_config: Callable[[str], Path]
    ) -> None:
        (folder / "app-secret").write_text("from-a-file-secret\n", encoding="utf-8")
        path = write_config(
            VALID.replace("app_secret: s3cret-value-for-tests", "app_secret_file: app-secret")
        )

        assert load(path).symbl.app_secret == "from-a-file-secret"


class TestEnvironmentExpansion:
    """``${VAR}`` comes from the environment, ``$$`` is a literal dollar."""

    def test_expands_and_escapes(self, folder: Path, write_config: Callable[[str], Path]) -> None:
        path = write_config(
            """\
            symbl:
              app_id: ${SYMBL_APP_ID}
              app_secret: pa$$word-${SUFFIX}
            state_dir: ${BASE}/state
            profiles: {default: {params: {name: cost $5}}}
            inboxes: [{path: "${BASE}/inbox", profile: default}]
            """
        )

        config = load(path, {"SYMBL_APP_ID": "id-1", "SUFFIX": "xyz", "BASE": str(folder)})

        assert config.symbl.app_id == "id-1"
        assert config.symbl.app_secret == "pa$word-xyz"
        assert config.state_dir == folder / "state"
        assert config.inboxes[0].path == folder / "inbox"
        assert config.profiles["default"].params["name"] == "cost $5"

    def test_uses_process_environment_by_default(
        self, write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SYMBL_TEST_APP_ID", "id-from-process")
        path = write_config(VALID.replace("app_id: test-app", "app_id: ${SYMBL_TEST_APP_ID}"))

        assert load_config(path).symbl.app_id == "id-from-process"


class TestInheritance:
    """Profiles inherit parameters, continuation settings and exports along ``extends``."""

    @pytest.fixture
    def config(self, write_config: Callable[[str], Path]) -> Config:
        path = write_config(
            """\
            symbl: {app_id: test-app, app_secret: s3cret-value-for-tests}
            state_dir: state
            profiles:
              default:
                params: {languageCode: en-US, confidenceThreshold: 0.6}
                continuation_pattern: '^(?P<conversation>.+)-part(?P<part>\\d+)$'
                export: [transcript]
              sales:
                extends: default
                params: {confidenceThreshold: 0.8, mode: phone}
                continuation_wait_seconds: 600
              sales-emea:
                extends: sales
                params: {languageCode: en-GB}
                export: [transcript, summary]
            inboxes: [{path: inbox, profile: sales-emea}]
            """
        )
        return load(path)

    def test_params_merge_parent_first(self, config: Config) -> None:
        assert dict(config.profiles["sales-emea"].params) == {
            "languageCode": "en-GB",
            "confidenceThreshold": 0.8,
            "mode": "phone",
        }
        assert dict(config.profiles["default"].params) == {
            "languageCode": "en-US",
            "confidenceThreshold": 0.6,
        }

    def test_other_settings_inherited_or_overridden(self, config: Config) -> None:
        emea = config.profiles["sales-emea"]
        pattern = emea.continuation_pattern
        assert pattern is not None
        assert (match := pattern.match("call-42-part3")) is not None
        assert match["conversation"] == "call-42"
        assert emea.continuation_wait_seconds == 600.0
        assert emea.export == ("transcript", "summary")
        assert config.profiles["sales"].export == ("transcript",)
        assert config.profiles["default"].continuation_wait_seconds == 86400.0


class TestDefaults:
    """Keys left out take their documented defaults; folders are created."""

    def test_defaults(self, folder: Path, write_config: Callable[[str], Path]) -> None:
        config = load(write_config(VALID))

        assert config.source == folder / "config.yaml"
        assert config.symbl.base_url == "https://api.symbl.ai"
        assert config.symbl.max_concurrent_jobs == 50
        assert config.symbl.max_concurrent_uploads == 4
        assert config.symbl.connect_timeout_seconds == 10.0
        assert config.symbl.token_refresh_margin_seconds == 300.0
        assert config.log_level == "info"
        assert config.shutdown_timeout_seconds == 20.0
        assert config.http is None
        assert (config.tracking.poll_initial_seconds, config.tracking.poll_max_seconds) == (1, 30)
        assert config.tracking.poll_backoff_factor == 1.5
        assert config.retention.keep_filed_days == 90
        assert config.warnings == ()
        inbox = config.inboxes[0]
        assert (inbox.path, inbox.done, inbox.failed) == (
            folder / "inbox",
            folder / "inbox" / "done",
            folder / "inbox" / "failed",
        )
        assert (inbox.watch, inbox.recursive, inbox.on_duplicate) == ("auto", False, "upload")
        assert (inbox.settle_seconds, inbox.rescan_seconds, inbox.poll_interval_seconds) == (
            2.0,
            300.0,
            1.0,
        )
        assert inbox.exclude == ()

    def test_folders_created(self, folder: Path, write_config: Callable[[str], Path]) -> None:
        load(write_config(VALID))

        assert (folder / "inbox" / "done").is_dir()
        assert (folder / "inbox" / "failed").is_dir()
        assert (folder / "state").is_dir()

    def test_nothing_created_without_prepare(
        self, folder: Path, write_config: Callable[[str], Path]
    ) -> None:
        load(write_config(VALID.replace("path: inbox", "path: later")), prepare_folders=False)

        assert sorted(child.name for child in folder.iterdir()) == ["config.yaml", "inbox"]

    def test_state_dir_from_systemd(
        self, folder: Path, write_config: Callable[[str], Path]
    ) -> None:
        path = write_config(VALID.replace("state_dir: state\n", ""))
        systemd = folder / "from-systemd"

        config = load(path, {"STATE_DIRECTORY": f"{systemd}:{folder}/second"})

        assert config.state_dir == systemd
        assert systemd.is_dir()


class TestFolderLayoutAllowed:
    """Layouts the daemon handles safely are accepted."""

    def test_excluded_done_inside_recursive_inbox(
        self, folder: Path, write_config: Callable[[str], Path]
    ) -> None:
        (folder / "other").mkdir()
        path = write_config(
            """\
            symbl: {app_id: test-app, app_secret: s3cret-value-for-tests}
            state_dir: state
            profiles: {default: {}}
            inboxes:
              - path: inbox
                profile: default
                recursive: true
                exclude: ["filed/*"]
              - path: other
                profile: default
                done: inbox/filed/other-done
                failed: inbox/filed/other-failed
            """
        )

        config = load(path)

        assert config.inboxes[1].done == folder / "inbox" / "filed" / "other-done"
        assert config.inboxes[1].done.is_dir()

    def test_own_done_inside_own_recursive_inbox(self, write_config: Callable[[str], Path]) -> None:
        path = write_config(
            VALID.replace("profile: default\n", "profile: default\n    recursive: true\n")
        )

        assert load(path).inboxes[0].recursive is True


@pytest.fixture
def shm_folder() -> Iterator[Path]:
    """A folder on /dev/shm (tmpfs), removed afterwards."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no writable /dev/shm to stand in for another filesystem")
    folder = shm / f"symbl-inbox-test-{os.getpid()}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder)


class TestOtherFilesystem:
    """done/ on another filesystem works, with a warning that says what it costs."""

    def test_warns(
        self,
        folder: Path,
        shm_folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        if shm_folder.stat().st_dev == folder.stat().st_dev:
            pytest.skip("/dev/shm and the temporary folder share a filesystem")
        path = write_config(VALID + f"    done: {shm_folder}/done\n")

        outcome = check_config(path)

        assert outcome.code == 0
        assert outcome.errors == [
            f"warning: {path}:12: inboxes[0].done: {shm_folder}/done is on another filesystem "
            f"than {folder}/inbox: files are copied, fsynced and deleted instead of renamed: "
            "slower, and briefly uses twice the space"
        ]


class TestYamlDocument:
    """Lines are kept for every key and item; duplicates and syntax errors are problems."""

    @pytest.fixture
    def document(self) -> YamlDocument:
        text = (
            "a: 1\nbase: &b\n  x: 1\nlist:\n  - p: 1\n    q: 2\n  - r\nmerged:\n  <<: *b\n  y: 2\n"
        )
        return load_yaml_document(text, "doc.yaml")

    def test_lines(self, document: YamlDocument) -> None:
        assert document.data["merged"] == {"x": 1, "y": 2}
        assert document.line_of(("a",)) == 1
        assert document.line_of(("list", 0, "q")) == 6
        assert document.line_of(("list", 1)) == 7
        assert document.line_of(("merged", "y")) == 10
        assert document.line_of(("merged", "x")) == 3

    def test_missing_key_points_at_parent(self, document: YamlDocument) -> None:
        assert document.line_of(("list", 0, "absent", "deeper")) == 5
        assert document.line_of(("absent",)) == 1

    def test_empty_document(self) -> None:
        document = load_yaml_document("# only a comment\n", "doc.yaml")

        assert document.data is None
        assert document.line_of(("a",)) is None

    def test_duplicates_all_reported(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_yaml_document("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "doc.yaml")

        assert caught.value.problems == (
            ConfigProblem("doc.yaml", 4, "b.c", "duplicate key; first given on line 3"),
            ConfigProblem("doc.yaml", 5, "a", "duplicate key; first given on line 1"),
        )

    def test_unsafe_tag_refused(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_yaml_document("a: !!python/object/apply:os.system [true]\n", "doc.yaml")

        [problem] = caught.value.problems
        assert (problem.line, problem.key) == (1, "")
        assert problem.message.startswith("YAML syntax error: could not determine a constructor")

    def test_keys_are_names_as_written(self) -> None:
        document = load_yaml_document("1: a\nno: b\n2024-05-01: c\n", "doc.yaml")

        assert document.data == {"1": "a", "no": "b", "2024-05-01": "c"}
        assert document.line_of(("2024-05-01",)) == 3

    def test_control_character_refused_with_line(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_yaml_document("a: 1\nb: \x07\n", "doc.yaml")

        assert caught.value.problems == (
            ConfigProblem("doc.yaml", 2, "", "YAML syntax error: unacceptable character #x0007"),
        )

    def test_recursive_alias_terminates(self) -> None:
        document = load_yaml_document("a: &x [*x]\n", "doc.yaml")

        assert document.line_of(("a", 0, 0, 0)) == 1


class TestProblemText:
    """A problem renders as FILE:LINE: key: message, dropping the parts it lacks."""

    def test_rendering(self) -> None:
        assert str(ConfigProblem("c.yaml", 3, "a.b", "bad")) == "c.yaml:3: a.b: bad"
        assert str(ConfigProblem("c.yaml", None, "a", "bad")) == "c.yaml: a: bad"
        assert str(ConfigProblem("c.yaml", 2, "", "bad")) == "c.yaml:2: bad"


class TestWithoutSecrets:
    """Commands that never talk to Symbl load the configuration without the secrets."""

    def test_an_unset_variable_and_a_missing_file_are_fine_without_secrets(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "inbox").mkdir()
        config_path = tmp_path / "config.yaml"
        config_path.write_text(
            "symbl:\n  app_id: x\n  app_secret_file: ${CREDENTIALS_DIRECTORY}/symbl-app-secret\n"
            f"state_dir: {tmp_path / 'state'}\n"
            "profiles:\n  default:\n    params: {}\n"
            f"inboxes:\n  - path: {tmp_path / 'inbox'}\n    profile: default\n"
        )
        config = load_config(config_path, environ={}, prepare_folders=False, need_secrets=False)
        assert config.symbl.app_secret == ""
        assert config.secrets() == ()
        with pytest.raises(ConfigError) as caught:
            load_config(config_path, environ={}, prepare_folders=False)
        assert "CREDENTIALS_DIRECTORY" in str(caught.value)


class TestUnsafeLayout:
    """check-config warns when droppers could rename or replace done/ or failed/."""

    def test_warns_for_a_writable_inbox_without_the_sticky_bit(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        path = write_config(VALID)
        (folder / "inbox").chmod(0o777)

        outcome = check_config(path)

        assert outcome.code == 0
        inbox = folder / "inbox"
        assert outcome.errors == [
            f"warning: {path}:10: inboxes[0].{kind}: {inbox}/{kind} lies inside {inbox}, which "
            "everyone may write and which has no sticky bit: droppers can rename or replace it "
            f"and what is filed there. Make the inbox sticky (chmod +t {inbox}) or move {kind} "
            "outside it"
            for kind in ("done", "failed")
        ]

    @pytest.mark.parametrize("mode", [0o755, 0o1777, 0o3770])
    def test_quiet_for_a_safe_inbox(
        self,
        mode: int,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        path = write_config(VALID)
        (folder / "inbox").chmod(mode)

        assert check_config(path).errors == []

    def test_quiet_when_done_and_failed_lie_outside(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        path = write_config(VALID + f"    done: {folder}/done\n    failed: {folder}/failed\n")
        (folder / "inbox").chmod(0o777)

        assert check_config(path).errors == []

    def test_a_planted_symlink_is_not_where_done_goes(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        elsewhere = folder / "elsewhere"
        elsewhere.mkdir()
        (folder / "inbox" / "done").symlink_to(elsewhere)
        path = write_config(VALID + f"    done: {folder}/inbox/done\n")

        assert load(path, prepare_folders=False).inboxes[0].done == folder / "inbox" / "done"
        outcome = check_config(path)
        assert outcome.code == 2
        assert outcome.errors == [
            f"{path}:12: inboxes[0].done: {folder}/inbox/done is a symbolic link inside the "
            "inbox; the daemon never follows symlinks there: make it a real folder, or name "
            "the folder it points to"
        ]

    def test_warns_for_a_filing_folder_of_another_user(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        if os.geteuid() != 0:
            pytest.skip("making a folder of another user needs root")
        (folder / "inbox" / "failed").mkdir()
        os.chown(folder / "inbox" / "failed", 65534, 65534)
        path = write_config(VALID)

        outcome = check_config(path)

        assert outcome.errors == [
            f"warning: {path}:10: inboxes[0].failed: {folder}/inbox/failed is owned by uid "
            "65534: the daemon files only into folders of its own user (uid 0) or root, and "
            "stops filing there"
        ]
