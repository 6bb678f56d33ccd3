"""The configuration after loading: inheritance resolved, ``${VAR}`` expanded, everything checked.

These frozen dataclasses are what the daemon, the CLI and the tests consume. The YAML keys and
their rules live in ``schema.py``; ``loader.py`` turns a file into a ``Config`` or a
``ConfigError``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

WatchMode = Literal["auto", "inotify", "poll"]
DuplicatePolicy = Literal["upload", "skip"]
# What happens to audio with more than one channel (see daemon.files.recordings).
StereoPolicy = Literal["reject", "per_channel", "downmix"]
# add: the system's store and the file; replace: the file only.
CaMode = Literal["add", "replace"]
# http: CONNECT for https targets, forwarding for http targets; https: the same over TLS.
PROXY_SCHEMES: tuple[str, ...] = ("http", "https")
EXPORT_KINDS: tuple[str, ...] = (
    "transcript",
    "messages",
    "topics",
    "questions",
    "action_items",
    "follow_ups",
    "summary",
    "entities",
    "trackers",
    "markdown",
    "srt",
    "vtt",
)


@dataclass(frozen=True)
class SymblSettings:
    base_url: str
    app_id: str
    app_secret: str = field(repr=False)
    max_concurrent_jobs: int = 50
    max_concurrent_uploads: int = 4
    connect_timeout_seconds: float = 10.0
    # Tokens are renewed this long before they expire, never after.
    token_refresh_margin_seconds: float = 300.0
    # Without an answer from Symbl this long, the stall api_unreachable is reported.
    unreachable_after_seconds: float = 120.0
    # ``symbl.proxy`` without its password; None: the environment decides (HTTPS_PROXY...).
    proxy: str | None = None
    proxy_password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    ca_mode: CaMode = "add"


@dataclass(frozen=True)
class Hook:
    """One hook: a command, notification URLs or a dead-man's-switch ping (exactly one)."""

    events: tuple[str, ...] = ()
    notify: tuple[str, ...] = field(default=(), repr=False)  # URLs may carry passwords
    command: tuple[str, ...] = ()
    timeout_seconds: float = 60.0
    ping: str | None = field(default=None, repr=False)
    interval_seconds: float = 300.0
    retries: int = 3
    group_seconds: float = 60.0
    where: str = "hooks[0]"
    """Its place in the file (``hooks[1]``, ``profiles.sales.hooks[0]``), for logs and metrics."""


@dataclass(frozen=True)
class Profile:
    name: str
    # Merged along the ``extends`` chain and validated; JSON-native values.
    params: Mapping[str, Any]
    continuation_pattern: re.Pattern[str] | None = None
    continuation_wait_seconds: float = 86400.0
    export: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()
    stereo: StereoPolicy = "reject"
    # Transcode audio in other formats (.m4a, .flac, ...) into a mono WAV and send that.
    convert: bool = False
    # Symbl's formatting flags for the markdown and srt exports, only those set.
    transcript_options: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Inbox:
    path: Path
    profile: str
    done: Path
    failed: Path
    watch: WatchMode = "auto"
    recursive: bool = False
    settle_seconds: float = 2.0
    rescan_seconds: float = 300.0
    poll_interval_seconds: float = 1.0
    on_duplicate: DuplicatePolicy = "upload"
    # Glob patterns (relative to the inbox) that are never picked up.
    exclude: tuple[str, ...] = ()
    # ``inboxes[].id``: the same on every host that shares the journal; empty: the path.
    id: str = ""

    @property
    def key(self) -> str:
        """The inbox's identity in the journal, logs and metrics: its id, else its path."""
        return self.id or str(self.path)


@dataclass(frozen=True)
class TrackingSettings:
    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 30.0
    poll_backoff_factor: float = 1.5


@dataclass(frozen=True)
class HttpSettings:
    listen: str
    public_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class JournalSettings:
    """``journal``: a PostgreSQL journal. ``url`` never holds the password; ``password`` does."""

    url: str
    password: str | None = field(default=None, repr=False)
    connect_timeout_seconds: float = 10.0

    @property
    def location(self) -> str:
        """``postgresql://USER@HOST:PORT/DATABASE``, for people (never the password)."""
        from daemon.config.pgurl import describe

        return describe(self.url)


@dataclass(frozen=True)
class ClusterSettings:
    """``cluster``: this host among the hosts that share a journal."""

    host_id: str = field(default_factory=socket.gethostname)
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0


@dataclass(frozen=True)
class Config:
    source: Path
    symbl: SymblSettings
    state_dir: Path
    profiles: Mapping[str, Profile]
    inboxes: tuple[Inbox, ...]
    log_level: str = "info"
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    shutdown_timeout_seconds: float = 20.0
    http: HttpSettings | None = None
    hooks: tuple[Hook, ...] = ()
    # Things that work but cost something (e.g. done/ on another filesystem), told at start.
    warnings: tuple[str, ...] = ()
    # None: SQLite in state_dir.
    journal: JournalSettings | None = None
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    def profile_for(self, inbox: Inbox) -> Profile:
        return self.profiles[inbox.profile]

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed, logged or written to a record."""
        values = [self.symbl.app_secret]
        if self.symbl.proxy_password:
            values.append(self.symbl.proxy_password)
        if self.http is not None and self.http.webhook_secret:
            values.append(self.http.webhook_secret)
        if self.journal is not None and self.journal.password:
            values.append(self.journal.password)
        return tuple(value for value in values if value)
