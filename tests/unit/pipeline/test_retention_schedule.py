"""Retention's decisions: the cutoff, how often it runs, which inboxes keep their twins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daemon.config.model import (
    Config,
    DuplicatePolicy,
    Inbox,
    RetentionSettings,
    SymblSettings,
)
from daemon.journal import Kind, MemoryJournal, State
from daemon.pipeline.retention import (
    BATCH_ROWS,
    DAY_SECONDS,
    LONGEST_INTERVAL_SECONDS,
    SHORTEST_INTERVAL_SECONDS,
    Retention,
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


class Uploads:
    """The scheduler's side of retention: how often pruning let uploads go first."""

    def __init__(self) -> None:
        self.yields = 0

    async def wait_for_quiet_uploads(self) -> None:
        self.yields += 1


@dataclass
class Daemon:
    db: MemoryJournal
    config: Config
    scheduler: Uploads


async def filed(journal: MemoryJournal, count: int, when: float, sha: str = "") -> None:
    for index in range(count):
        record = await journal.add_file("in", f"{sha}{index}.wav", Kind.AUDIO, 1, 1, State.WAITING)
        record.state, record.outcome = State.FILED, "done"
        record.sha256, record.conversation_id = f"{sha}{index}", "c"
        record.stamp("seen", when)
        record.stamp("filed", when)
        await journal.save(record)


async def test_a_pass_prunes_in_batches_and_lets_uploads_go_first_between_them(
    tmp_path: Path,
) -> None:
    journal, now = MemoryJournal(), 100 * DAY_SECONDS
    await filed(journal, BATCH_ROWS * 2 + 10, when=now - 4 * DAY_SECONDS)
    await filed(journal, 3, when=now - DAY_SECONDS, sha="recent")
    daemon = Daemon(journal, config(tmp_path), Uploads())  # keep_filed_days: 3

    assert await Retention(daemon, clock=lambda: now).prune() == BATCH_ROWS * 2 + 10
    assert daemon.scheduler.yields == 2  # between the three batches
    assert len(await journal.in_states((State.FILED,))) == 3
    assert await journal.counts() == {("in", "filed_done"): BATCH_ROWS * 2 + 13}
    assert await Retention(daemon, clock=lambda: now).prune() == 0
