"""A faithful emulator of the Symbl.ai Async Audio API, for tests, benchmarks and the demo.

In-process use::

    with EmulatorServer(EmulatorSettings(job_seconds=0.3)) as server:
        server.base_url, server.state.submissions
"""

from daemon.emulator.server import EmulatorServer, TlsFiles
from daemon.emulator.settings import EmulatorSettings
from daemon.emulator.state import (
    EmulatorState,
    RequestRecord,
    SubmissionRecord,
    WebhookDelivery,
)

__all__ = [
    "EmulatorServer",
    "EmulatorSettings",
    "EmulatorState",
    "RequestRecord",
    "SubmissionRecord",
    "TlsFiles",
    "WebhookDelivery",
]
