"""Hooks: tell operators when files are done or failed, and when work stalls or recovers.

Three kinds, each configured under ``hooks:`` (globally, and per profile in addition):

- a **command**, run as an argument list (never through a shell) with a clean environment:
  ``PATH``, ``LANG`` and the ``SYMBL_INBOX_*`` facts of the event; the record's path is its
  last argument; cut off (its whole process group) after ``timeout_seconds``;
- **notification URLs**, sent by Apprise (e-mail, Slack, Teams, ntfy, Matrix, JSON webhooks...),
  with events grouped: a burst becomes one message with counts and the first few names;
- a **ping**, Healthchecks-style: ``URL/start`` when the daemon starts, then ``URL`` every
  ``interval_seconds`` while work proceeds, or ``URL/fail`` while a stall stops it.

Hooks never hold the pipeline up: the daemon only offers an event to each hook's bounded
queue (a full queue drops the event, logged and counted), and a task per hook does the work.
Every attempt is bounded (time-outs, ``retries``); a hook that fails is logged and counted in
``symbl_inbox_hook_runs{outcome="failed"}``, never a reason to fail a file. Nothing a hook
receives comes from the daemon's environment or configuration secrets: texts pass the log
masker as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from daemon.config.model import Config, Hook
from daemon.files.records import iso
from daemon.fsboundary import display
from daemon.logs import get_logger, masker

log = get_logger("symbl_inbox.hooks")

QUEUE_LIMIT = 1000
"""Events waiting per hook; beyond that they are dropped (and counted)."""
FIRST_NAMES = 5
"""Files named in a grouped message; the rest are counted."""
QUIET_SECONDS = 5.0
"""A burst is sent once no new event came for this long (or after group_seconds at most)."""
RETRY_INITIAL_SECONDS = 2.0
RETRY_CAP_SECONDS = 60.0
PING_TIMEOUT_SECONDS = 10.0
_KILL_GRACE_SECONDS = 2.0
_STDERR_SHOWN = 500
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class HookEvent(StrEnum):
    DONE = "done"
    FAILED = "failed"
    STALLED = "stalled"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class Happening:
    """One event a hook may act on: a file filed, or a stall that began or ended."""

    event: HookEvent
    at: float
    inbox: str | None = None
    file: str | None = None
    """The file's path relative to its inbox."""
    filed_as: str | None = None
    """Where the audio is now (in done/ or failed/)."""
    record: str | None = None
    """The JSON record beside it: ``.result.json`` or ``.error.json``."""
    transcript: str | None = None
    profile: str | None = None
    reason: str | None = None
    message: str | None = None
    conversation_id: str | None = None
    job_id: str | None = None
    stall: str | None = None
    """The stall's kind (``credentials_refused``...), for stalled and recovered."""
    since: float | None = None

    def facts(self) -> dict[str, str]:
        """The ``SYMBL_INBOX_*`` environment of a command hook (only the facts that apply)."""
        values = {
            "EVENT": self.event.value,
            "TIME": iso(self.at),
            "HOST": socket.gethostname(),
            "INBOX": self.inbox,
            "FILE": self.file,
            "FILED_AS": self.filed_as,
            "RECORD": self.record,
            "TRANSCRIPT": self.transcript,
            "PROFILE": self.profile,
            "REASON": self.reason,
            "MESSAGE": self.message,
            "CONVERSATION_ID": self.conversation_id,
            "JOB_ID": self.job_id,
            "STALL": self.stall,
            "STALL_SINCE": iso(self.since),
        }
        return {
            f"SYMBL_INBOX_{key}": masker.scrub(value)
            for key, value in values.items()
            if value is not None
        }


# ---------------------------------------------------------------- pure decisions


def command_environment(happening: Happening, environ: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: ``PATH`` and ``LANG`` from ours (with defaults), plus the facts."""
    env = {
        "PATH": environ.get("PATH") or _DEFAULT_PATH,
        "LANG": environ.get("LANG") or "C.UTF-8",
    }
    env.update(happening.facts())
    return env


def command_argv(command: Sequence[str], happening: Happening) -> list[str]:
    """The hook's own arguments, then the record's path when the event has one."""
    return [*command, happening.record] if happening.record else list(command)


def retry_delay(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1`` (attempt 1 failed: 2 s, then 4, 8... up to 60)."""
    return float(min(RETRY_CAP_SECONDS, RETRY_INITIAL_SECONDS * 2 ** max(0, attempt - 1)))


class Burst:
    """Events gathered into one message: sent once quiet, or ``window`` after the first."""

    def __init__(self, window: float, quiet: float = QUIET_SECONDS) -> None:
        self.window = window
        self.quiet = min(quiet, window)
        self._items: list[Happening] = []
        self._first = 0.0
        self._last = 0.0

    def add(self, happening: Happening, now: float) -> None:
        if not self._items:
            self._first = now
        self._items.append(happening)
        self._last = now

    def due(self) -> float | None:
        """When the gathered events are to be sent (a monotonic time), None when there are none."""
        if not self._items:
            return None
        return min(self._first + self.window, self._last + self.quiet)

    def take(self) -> list[Happening]:
        items, self._items = self._items, []
        return items

    def __len__(self) -> int:
        return len(self._items)


def compose(happenings: Sequence[Happening], host: str) -> tuple[str, str]:
    """A short title and a body for one message about ``happenings`` (one or many)."""
    counts = Counter(h.event for h in happenings)
    if len(happenings) == 1:
        title = f"symbl-inbox on {host}: {_headline(happenings[0])}"
    else:
        parts = [f"{counts[event]} {event.value}" for event in HookEvent if counts[event]]
        title = f"symbl-inbox on {host}: {', '.join(parts)}"
    lines: list[str] = []
    for event in HookEvent:
        group = [h for h in happenings if h.event is event]
        if not group:
            continue
        if lines:
            lines.append("")
        lines.extend(_section(event, group))
    return display(masker.scrub(title)), masker.scrub("\n".join(display(line) for line in lines))


def _headline(happening: Happening) -> str:
    if happening.event in (HookEvent.STALLED, HookEvent.RECOVERED):
        return f"{happening.event.value}: {happening.stall}"
    name = (happening.file or "").rsplit("/", 1)[-1]
    if happening.event is HookEvent.FAILED:
        return f"failed: {name} ({happening.reason})"
    return f"done: {name}"


def _section(event: HookEvent, group: Sequence[Happening]) -> list[str]:
    if event is HookEvent.STALLED:
        return [f"Stalled: {h.stall} since {iso(h.since)}: {h.message}" for h in group]
    if event is HookEvent.RECOVERED:
        return [f"Recovered: {h.stall} (stalled since {iso(h.since)})" for h in group]
    header = f"{event.value.capitalize()}: {len(group)} file{'s' if len(group) != 1 else ''}"
    if event is HookEvent.FAILED:
        reasons = Counter(h.reason or "unknown" for h in group)
        header += " (" + ", ".join(f"{r} {n}" for r, n in reasons.most_common()) + ")"
    lines = [header]
    for happening in group[:FIRST_NAMES]:
        line = f"- {happening.inbox}/{happening.file}"
        if event is HookEvent.FAILED:
            line += f": {happening.reason}: {' '.join(str(happening.message or '').split())}"
        lines.append(line)
    if len(group) > FIRST_NAMES:
        lines.append(f"... and {len(group) - FIRST_NAMES} more")
    return lines


def notify_url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (None when it can); the URL itself is never repeated."""
    import apprise

    # Apprise logs a URL it cannot parse, password and all: not here.
    quiet = logging.getLogger("apprise")
    level, quiet.level = quiet.level, logging.CRITICAL + 1
    try:
        plugin = apprise.Apprise.instantiate(url)
    finally:
        quiet.setLevel(level)
    if plugin is None:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        return f"not a notification URL Apprise understands (scheme {scheme!r})"
    return None


# ---------------------------------------------------------------- running them

Count = Callable[[str, str, str], None]
"""``count(hook, kind, outcome)``: one hook run ended (ok, failed, timeout, dropped)."""
Health = Callable[[], tuple[bool, str]]
"""Whether work proceeds, and a one-line status (for pings)."""


@dataclass
class _Channel:
    hook: Hook
    count: Count
    queue: asyncio.Queue[Happening] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    task: asyncio.Task[None] | None = None

    @property
    def kind(self) -> str:
        return "command" if self.hook.command else "notify" if self.hook.notify else "ping"

    def offer(self, happening: Happening) -> None:
        try:
            self.queue.put_nowait(happening)
        except asyncio.QueueFull:
            self.count(self.hook.where, self.kind, "dropped")
            log.warning("hook_event_dropped", hook=self.hook.where, on=happening.event.value)

    def ended(self, outcome: str, **facts: Any) -> None:
        self.count(self.hook.where, self.kind, outcome)
        (log.info if outcome == "ok" else log.warning)(
            "hook_finished", hook=self.hook.where, kind=self.kind, outcome=outcome, **facts
        )


class HookRunner:
    """Every configured hook, each with its queue and task; ``emit`` never waits."""

    def __init__(self, config: Config, *, count: Count, health: Health) -> None:
        self._count = count
        self._health = health
        self._host = socket.gethostname()
        self._global = [_Channel(hook, count) for hook in config.hooks]
        self._profiles = {
            name: [_Channel(hook, count) for hook in profile.hooks]
            for name, profile in config.profiles.items()
        }
        self._pings_wakeup = asyncio.Event()
        self._stopping = False

    def _channels(self) -> list[_Channel]:
        return self._global + [ch for chans in self._profiles.values() for ch in chans]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for channel in self._channels():
            work = {"command": self._commands, "notify": self._notifications, "ping": self._pings}
            channel.task = loop.create_task(work[channel.kind](channel))

    def _for(self, event: HookEvent, profile: str | None) -> list[_Channel]:
        """A file's events go to the global hooks and its profile's; a stall concerns every
        team, so it goes to every hook that listens for it."""
        if event in (HookEvent.STALLED, HookEvent.RECOVERED):
            return self._channels()
        return self._global + (self._profiles.get(profile, []) if profile else [])

    def listens(self, event: HookEvent, profile: str | None = None) -> bool:
        """Whether any hook acts on ``event`` (so the caller can skip gathering its facts)."""
        return any(event.value in channel.hook.events for channel in self._for(event, profile))

    def emit(self, happening: Happening, profile: str | None = None) -> None:
        """Offer ``happening`` to every hook that acts on it (global ones, then the profile's)."""
        if happening.event in (HookEvent.STALLED, HookEvent.RECOVERED):
            self._pings_wakeup.set()
        for channel in self._for(happening.event, profile):
            if happening.event.value in channel.hook.events:
                channel.offer(happening)

    async def stop(self, grace: float = 5.0) -> None:
        """Send what is gathered (within ``grace``), then end every hook's task."""
        self._stopping = True
        self._pings_wakeup.set()
        tasks = [ch.task for ch in self._channels() if ch.task is not None]
        for channel in self._channels():
            # Wakes a worker waiting on an empty queue; it ends once its queue is drained.
            with contextlib.suppress(asyncio.QueueFull):
                channel.queue.put_nowait(_WAKE)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------ commands

    async def _commands(self, channel: _Channel) -> None:
        while True:
            happening = await channel.queue.get()
            if happening is _WAKE:
                if self._stopping and channel.queue.empty():
                    return
                continue
            try:
                await self._run_command(channel, happening)
            except Exception:
                log.exception("internal_error", hook=channel.hook.where)

    async def _run_command(self, channel: _Channel, happening: Happening) -> None:
        hook = channel.hook
        argv = command_argv(hook.command, happening)
        env = command_environment(happening, os.environ)
        for attempt in range(1, hook.retries + 2):
            outcome, facts = await _run_once(argv, env, hook.timeout_seconds)
            last = attempt > hook.retries or outcome == "not_runnable" or self._stopping
            if outcome == "ok" or last:
                channel.ended(outcome, on=happening.event.value, attempt=attempt, **facts)
                return
            log.warning("hook_retrying", hook=hook.where, attempt=attempt, outcome=outcome, **facts)
            await asyncio.sleep(retry_delay(attempt))

    # ------------------------------------------------------------ notifications

    async def _notifications(self, channel: _Channel) -> None:
        burst = Burst(channel.hook.group_seconds)
        loop = asyncio.get_running_loop()
        while True:
            due = burst.due()
            timeout = None if due is None else max(0.0, due - loop.time())
            try:
                happening = await asyncio.wait_for(channel.queue.get(), timeout)
            except TimeoutError:
                await self._send_burst(channel, burst.take())
                continue
            if happening is not _WAKE:
                burst.add(happening, loop.time())
            elif self._stopping and channel.queue.empty():
                if len(burst):
                    await self._send_burst(channel, burst.take())
                return

    async def _send_burst(self, channel: _Channel, happenings: list[Happening]) -> None:
        if not happenings:
            return
        title, body = compose(happenings, self._host)
        pending = list(channel.hook.notify)
        for attempt in range(1, channel.hook.retries + 2):
            results = await asyncio.gather(
                *(asyncio.to_thread(_apprise_send, url, title, body) for url in pending)
            )
            pending = [url for url, ok in zip(pending, results, strict=True) if not ok]
            if not pending or attempt > channel.hook.retries or self._stopping:
                break
            log.warning(
                "hook_retrying", hook=channel.hook.where, attempt=attempt, urls_failed=len(pending)
            )
            await asyncio.sleep(retry_delay(attempt))
        channel.ended(
            "failed" if pending else "ok",
            events=len(happenings),
            urls_failed=len(pending),
        )

    # ------------------------------------------------------------ pings

    async def _pings(self, channel: _Channel) -> None:
        hook = channel.hook
        assert hook.ping is not None
        base = hook.ping.rstrip("/")
        async with httpx.AsyncClient(timeout=PING_TIMEOUT_SECONDS) as client:
            await self._ping(channel, client, f"{base}/start", "daemon started")
            loop = asyncio.get_running_loop()
            next_due = loop.time() + hook.interval_seconds
            last_ok: bool | None = None
            while not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._pings_wakeup.wait(), max(0.0, next_due - loop.time())
                    )
                self._pings_wakeup.clear()
                if self._stopping:
                    return
                ok, status = self._health()
                if ok == last_ok and loop.time() < next_due:
                    continue  # a stall came and went between two pings: the next one says it
                last_ok = ok
                await self._ping(channel, client, base if ok else f"{base}/fail", status)
                next_due = loop.time() + hook.interval_seconds

    async def _ping(
        self, channel: _Channel, client: httpx.AsyncClient, url: str, status: str
    ) -> None:
        signal_name = url.rsplit("/", 1)[-1] if url.endswith(("/start", "/fail")) else "success"
        for attempt in range(1, channel.hook.retries + 2):
            try:
                response = await client.post(url, content=masker.scrub(status).encode())
                error = None if response.is_success else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            if error is None:
                channel.ended("ok", signal=signal_name)
                return
            if attempt > channel.hook.retries or self._stopping:
                channel.ended("failed", signal=signal_name, error=error)
                return
            await asyncio.sleep(retry_delay(attempt))


_WAKE = Happening(HookEvent.DONE, 0.0)
"""Put on a queue by ``stop`` to wake its worker; never acted on."""


async def _run_once(
    argv: list[str], env: dict[str, str], seconds: float
) -> tuple[str, dict[str, Any]]:
    """Run the command once: ``ok``, ``failed`` (exit status), ``timeout`` or ``not_runnable``."""
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a time-out ends all of it
            cwd="/",
        )
    except OSError as exc:
        return "not_runnable", {"error": exc.strerror or str(exc), "program": argv[0]}
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        await _kill_group(process)
        return "timeout", {"seconds": seconds}
    except asyncio.CancelledError:
        await _kill_group(process)
        raise
    facts: dict[str, Any] = {
        "exit_status": process.returncode,
        "seconds": round(time.monotonic() - started, 3),
    }
    if process.returncode != 0:
        facts["stderr"] = stderr.decode(errors="replace")[-_STDERR_SHOWN:].strip()
        return "failed", facts
    return "ok", facts


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            await asyncio.wait_for(process.wait(), _KILL_GRACE_SECONDS)
            return
        except TimeoutError:
            continue


def _apprise_send(url: str, title: str, body: str) -> bool:
    """One notification through Apprise (in a worker thread: its plugins block)."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return False
    return bool(notifier.notify(body=body, title=title))
