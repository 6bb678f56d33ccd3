"""The endpoint as the configuration asks for it: started, moved by a reload, stopped."""

from __future__ import annotations

from daemon.config.model import Config
from daemon.http.endpoint import Endpoint, start_endpoint
from daemon.http.view import Served
from daemon.logs import get_logger

log = get_logger("symbl_inbox.http")


class HttpService:
    """Owns the running endpoint (None without an ``http`` section, or before the start)."""

    def __init__(self, served: Served) -> None:
        self._served = served
        self.endpoint: Endpoint | None = None

    async def stop(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.stop()

    async def start(self, config: Config, *, at_start: bool = False) -> bool:
        """Listen as ``config.http`` says; False (after saying why) when that cannot be done.

        At start that stops the daemon: running without the webhooks, metrics and /healthz
        that were asked for would mislead whoever relies on them.
        """
        if config.http is None:
            return True
        try:
            self.endpoint = await start_endpoint(self._served, config.http)
        except (OSError, RuntimeError, ValueError) as exc:
            log.error(
                "http_unavailable",
                listen=config.http.listen,
                error=str(exc),
                message=f"cannot listen on {config.http.listen} ({exc}): "
                + (
                    "not starting; free that address or change http.listen"
                    if at_start
                    else "keeping the endpoint as it was"
                ),
            )
            return False
        return True

    async def restart(self, old: Config, new: Config) -> None:
        """Serve the new ``http`` settings; if they cannot be served, keep the old endpoint."""
        same_address = (
            old.http is not None and new.http is not None and (old.http.listen == new.http.listen)
        )
        previous = self.endpoint
        if previous is not None and (same_address or new.http is None):
            await previous.stop()  # the address is needed again (or not at all)
            self.endpoint = previous = None
        if await self.start(new):
            if previous is not None:
                await previous.stop()
            return
        self.endpoint = previous
        if previous is None:
            await self.start(old)
        log.warning("http_kept", listen=old.http.listen if old.http else None)
