"""The application token: one, shared by every caller, renewed ahead of its expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

from daemon.config.model import SymblSettings

# A token is renewed when less than this share of its lifetime is left (if that is sooner than
# the configured margin), so that short-lived tokens are not renewed on every call.
TOKEN_REFRESH_SHARE: Final = 0.2


class TokenCache:
    """One application token, shared by all callers and renewed ahead of its expiry."""

    def __init__(self, settings: SymblSettings) -> None:
        self._settings = settings
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> str | None:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        return None

    async def get(self, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> str:
        token = self._fresh()
        if token is not None:
            return token
        async with self._lock:
            # Whoever held the lock before us may have renewed it already.
            token = self._fresh()
            if token is not None:
                return token
            requested_at = time.monotonic()
            token, lifetime = await fetch()
            expires_at = requested_at + lifetime
            if token == self._token:
                # The API hands its cached token back, with what is left of its life, until that
                # runs out: asking again early only gets it again. Use it to the end; a 401 in
                # the last moments renews it and repeats the request.
                self._renew_at = expires_at
            else:
                margin = min(
                    self._settings.token_refresh_margin_seconds, lifetime * TOKEN_REFRESH_SHARE
                )
                self._renew_at = expires_at - margin
            self._token = token
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` unless another caller has already replaced it."""
        if self._token == token:
            self._token = None
