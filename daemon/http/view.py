"""What the HTTP side may see of the running daemon, and where it hands webhooks.

The endpoint, the metrics and the status page never import the daemon: they read a
``LiveState`` snapshot (and the journal, for the status page's counts) through ``Observed`` and
pass the jobs a webhook reports as ended to a ``WebhookSink``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from daemon.http.metrics import Metrics, Scraped

if TYPE_CHECKING:
    from daemon.config.model import Config


class Observed(Scraped, Protocol):
    """The daemon as the endpoint, the metrics and the status page read it."""

    @property
    def config(self) -> Config: ...

    @property
    def metrics(self) -> Metrics:
        """The counters of what happened (files filed, jobs finished, hooks run)."""


class WebhookSink(Protocol):
    """Takes the jobs Symbl's webhooks report as ended."""

    def job_ended(self, job_id: str) -> bool:
        """A webhook said this job ended; False when the job is not one being followed."""


class Served(Observed, WebhookSink, Protocol):
    """What the endpoint serves: the daemon it reads, the sink it hands webhooks to."""
