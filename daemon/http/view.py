"""What the HTTP side may see of the running daemon, and where it hands webhooks.

The endpoint, the metrics and the status page never import the daemon: they read a
``LiveState`` snapshot (and the journal, for the status page's counts) through ``Observed`` and
pass the jobs a webhook reports as ended to a ``WebhookSink``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from daemon.client import ClientStats
    from daemon.config.model import Config
    from daemon.http.metrics import Metrics
    from daemon.journal import Journal
    from daemon.live import LiveState


class Observed(Protocol):
    """The daemon as the endpoint, the metrics and the status page read it."""

    @property
    def config(self) -> Config: ...

    @property
    def journal(self) -> Journal | None:
        """The journal once it is open (None before the start, or after the stop)."""

    @property
    def metrics(self) -> Metrics:
        """The counters of what happened (files filed, jobs finished, hooks run)."""

    def live_state(self) -> LiveState: ...

    def client_stats(self) -> ClientStats | None:
        """The Symbl client's counters, once a client exists."""


class WebhookSink(Protocol):
    """Takes the jobs Symbl's webhooks report as ended."""

    def job_ended(self, job_id: str) -> bool:
        """A webhook said this job ended; False when the job is not one being followed."""


class Served(Observed, WebhookSink, Protocol):
    """What the endpoint serves: the daemon it reads, the sink it hands webhooks to."""
