"""Prometheus metrics for ``/metrics``, every name prefixed ``symbl_inbox_``.

Two kinds live here. Events the daemon reports as they happen (a file filed, a job finished)
are ordinary counters and a histogram. Everything the daemon already keeps (the journal's
counts, the client's counters, what is uploading or running right now) is read live on each
scrape by a custom collector, so there is one source of truth and nothing to keep in sync.
The registry is this object's own: two daemons in one process (the tests) never share series.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from daemon.logs import get_logger

if TYPE_CHECKING:
    from daemon.journal import Journal
    from daemon.live import LiveState
    from daemon.symbl.client import ClientStats


class Scraped(Protocol):
    """What a scrape reads of the daemon (see ``daemon.http.view.Scraped``)."""

    @property
    def journal(self) -> Journal | None: ...

    def live_state(self) -> LiveState: ...

    def client_stats(self) -> ClientStats | None: ...


PREFIX = "symbl_inbox_"
# Symbl jobs run from seconds (a short voicemail) to a good share of the audio's length
# (up to four hours of audio per file).
JOB_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

log = get_logger("symbl_inbox.metrics")


class Metrics:
    """The daemon's metrics; ``bind`` it to the daemon, then ``render`` on each scrape."""

    def __init__(self, host_id: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self._live = _LiveState()
        self.registry.register(self._live)
        if host_id is not None:
            # Which host of a cluster answers: join on it (the series keep their own labels).
            Info(
                PREFIX + "host",
                "This daemon's cluster.host_id (the host name unless configured).",
                registry=self.registry,
            ).info({"host_id": host_id})
        self._filed = Counter(
            PREFIX + "files_filed",
            "Files moved to done/ or failed/, by inbox, outcome and failure reason.",
            ("inbox", "outcome", "reason"),
            registry=self.registry,
        )
        self._job_seconds = Histogram(
            PREFIX + "job_duration_seconds",
            "Time from submission until Symbl reported the job completed or failed.",
            ("inbox", "status"),
            buckets=JOB_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._webhooks = Counter(
            PREFIX + "webhooks_received",
            "Webhook calls by outcome: known job, unknown job, malformed body.",
            ("outcome",),
            registry=self.registry,
        )

        self._hooks = Counter(
            PREFIX + "hook_runs",
            "Hook runs by hook (its place in the configuration), kind and outcome: ok, failed, "
            "timeout, not_runnable, dropped (its queue was full).",
            ("hook", "kind", "outcome"),
            registry=self.registry,
        )

    def bind(self, daemon: Scraped) -> None:
        """Read ``daemon``'s live state on every scrape (binding again replaces the daemon)."""
        self._live.daemon = daemon

    def file_filed(self, inbox: str, outcome: str, reason: str | None) -> None:
        self._filed.labels(inbox, outcome, reason or "").inc()

    def job_finished(self, inbox: str, status: str, seconds: float) -> None:
        self._job_seconds.labels(inbox, status).observe(max(0.0, seconds))

    def hook_finished(self, hook: str, kind: str, outcome: str) -> None:
        self._hooks.labels(hook, kind, outcome).inc()

    def webhook_received(self, outcome: str) -> None:
        self._webhooks.labels(outcome).inc()

    async def render(self) -> tuple[bytes, str]:
        # The collector is called synchronously by prometheus_client: what needs the journal
        # is read first, where a store over the network may be awaited.
        await self._live.read_journal()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LiveState:
    """A prometheus_client collector over the bound daemon's state, read at scrape time."""

    def __init__(self) -> None:
        self.daemon: Scraped | None = None
        self._counts: dict[tuple[str, str], int] = {}

    async def read_journal(self) -> None:
        daemon = self.daemon
        self._counts = {}
        if daemon is None or daemon.journal is None:
            return
        try:
            self._counts = await daemon.journal.counts()
        except Exception as exc:  # sqlite3's or psycopg's: the store's own errors, both kinds
            # A scrape racing the shutdown (journal closed), or a shared journal out of reach,
            # must not turn into a 500: the other series still say what the daemon does.
            log.debug("metrics_journal_unreadable", error=str(exc))

    def collect(self) -> Iterator[Metric]:
        daemon = self.daemon
        if daemon is None:
            return
        live = daemon.live_state()
        yield _journal_metrics(self._counts)
        yield from _runtime_metrics(live)
        yield from _live_metrics(live)
        stats = daemon.client_stats()  # a client exists only once run() started
        if stats is not None:
            yield from _client_metrics(stats)


def _journal_metrics(counts: dict[tuple[str, str], int]) -> Metric:
    files = GaugeMetricFamily(
        PREFIX + "files",
        "Files in the journal by inbox and state; filed ones as filed_done or filed_failed.",
        labels=("inbox", "state"),
    )
    for (inbox, state), count in sorted(counts.items()):
        files.add_metric((inbox, state), count)
    return files


def _runtime_metrics(live: LiveState) -> Iterator[Metric]:
    available = GaugeMetricFamily(
        PREFIX + "inbox_available",
        "1 while the inbox folder is watched, 0 while it is missing or cannot be watched.",
        labels=("inbox",),
    )
    for key, watched in sorted(live.inboxes.items()):
        available.add_metric((key,), 1.0 if watched else 0.0)
    yield available
    yield GaugeMetricFamily(
        PREFIX + "uploads_in_progress", "Uploads running now.", value=live.uploading
    )
    yield GaugeMetricFamily(
        PREFIX + "jobs_in_flight",
        "Submitted jobs being followed until completed or failed.",
        value=live.jobs,
    )
    yield GaugeMetricFamily(
        PREFIX + "credentials_rejected",
        "1 while submissions are paused because Symbl rejected the credentials.",
        value=1.0 if live.credentials_rejected else 0.0,
    )
    yield GaugeMetricFamily(
        PREFIX + "rate_limit_pause_seconds",
        "Seconds left before submissions resume after a 429 (0 when not paused).",
        value=live.pause_seconds,
    )


def _live_metrics(state: LiveState) -> Iterator[Metric]:
    """Stalls and upload progress, from the daemon's snapshot."""
    stalls = GaugeMetricFamily(
        PREFIX + "stall",
        "1 for every stall in force, by kind (credentials_refused, rate_limited, "
        "api_unreachable, state_full, inbox_unavailable) and subject (an inbox, or empty).",
        labels=("kind", "subject"),
    )
    since = GaugeMetricFamily(
        PREFIX + "stall_since_seconds",
        "When each stall in force began (Unix time).",
        labels=("kind", "subject"),
    )
    for stall in state.stalls:
        labels = (stall.kind.value, stall.subject or "")
        stalls.add_metric(labels, 1.0)
        since.add_metric(labels, stall.since)
    yield stalls
    yield since
    yield GaugeMetricFamily(
        PREFIX + "stalls_stopping_work",
        "Stalls in force that stop all work (/healthz answers 503 while this is above 0).",
        value=len(state.stops_all_work()),
    )
    sent = sum(upload.sent for upload in state.uploads)
    total = sum(upload.total for upload in state.uploads)
    yield GaugeMetricFamily(
        PREFIX + "upload_bytes_sent", "Bytes sent so far of the uploads in flight.", value=sent
    )
    yield GaugeMetricFamily(
        PREFIX + "upload_bytes_total", "Total size of the uploads in flight.", value=total
    )


def _client_metrics(stats: ClientStats) -> Iterator[Metric]:
    def counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
        return CounterMetricFamily(PREFIX + name, documentation, value=value)

    yield counter("api_requests", "HTTP requests sent to Symbl.", stats.requests)
    yield _responses(stats)
    yield counter(
        "api_transport_errors",
        "Requests to Symbl that got no HTTP answer (connection, timeout).",
        stats.transport_errors,
    )
    yield counter("api_retries", "Requests to Symbl sent again after trouble.", stats.retries)
    yield counter("uploaded_bytes", "Audio bytes uploaded to Symbl.", stats.bytes_uploaded)
    yield counter("token_refreshes", "Access tokens fetched from Symbl.", stats.token_refreshes)
    yield counter(
        "auth_failures", "Requests Symbl refused for the credentials.", stats.auth_failures
    )


def _responses(stats: ClientStats) -> CounterMetricFamily:
    """Both the exact code (401, 429) and its class (5xx) as labels, so alerts need no regex."""
    family = CounterMetricFamily(
        PREFIX + "api_responses",
        "HTTP responses from Symbl by status code and class.",
        labels=("code", "class"),
    )
    for code, count in sorted(stats.responses.items()):
        family.add_metric((str(code), f"{code // 100}xx"), count)
    return family
