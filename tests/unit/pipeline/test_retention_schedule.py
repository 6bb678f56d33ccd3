"""Retention's decisions: the cutoff, how often it runs, which inboxes keep their twins."""

from __future__ import annotations

from pathlib import Path

from daemon.config.model import (
    Config,
    DuplicatePolicy,
    Inbox,
    RetentionSettings,
    SymblSettings,
)
from daemon.pipeline.retention import (
    DAY_SECONDS,
    LONGEST_INTERVAL_SECONDS,
    SHORTEST_INTERVAL_SECONDS,
    cutoff,
    interval,
    twin_inboxes,
)


def config(tmp_path: Path, *policies: DuplicatePolicy) -> Config:
    inboxes = tuple(
        Inbox(
            path=tmp_path / f"inbox{index}",
            profile="p",
            done=tmp_path / f"done{index}",
            failed=tmp_path / f"failed{index}",
            on_duplicate=policy,
        )
        for index, policy in enumerate(policies)
    )
    return Config(
        source=tmp_path / "config.yaml",
        symbl=SymblSettings(base_url="http://127.0.0.1:9", app_id="a", app_secret="s"),
        state_dir=tmp_path,
        profiles={},
        inboxes=inboxes,
        retention=RetentionSettings(keep_filed_days=3),
    )


def test_the_cutoff_is_keep_filed_days_before_now() -> None:
    assert cutoff(10 * DAY_SECONDS, 3) == 7 * DAY_SECONDS
    assert cutoff(1000.0, 0.5) == 1000.0 - DAY_SECONDS / 2


def test_passes_run_hourly_for_days_of_retention_and_faster_for_minutes() -> None:
    assert interval(90) == LONGEST_INTERVAL_SECONDS
    assert interval(1 / 24) == 360.0  # an hour's retention: every six minutes
    assert interval(1 / 86400) == SHORTEST_INTERVAL_SECONDS


def test_only_inboxes_that_skip_duplicates_keep_the_first_of_each_content(
    tmp_path: Path,
) -> None:
    chosen = twin_inboxes(config(tmp_path, "upload", "skip", "skip"))
    assert chosen == {str(tmp_path / "inbox1"), str(tmp_path / "inbox2")}
