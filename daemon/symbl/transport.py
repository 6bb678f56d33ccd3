"""An httpx transport on plain asyncio streams instead of anyio's.

httpcore asks every pooled connection "is your socket readable?" (a server-side close) each time
it hands out a connection. Through anyio each answer builds a dict of socket attributes and calls
getpeername(2) and poll(2), and every read or write opens an anyio cancel scope. In a burst of
50 status checks and 50 uploads that bookkeeping was a sixth of the daemon's event loop, and a
quarter of the emulator's while it sent webhooks (py-spy, the batch benchmark). Here the check
reads the stream's own state and a timeout is one timer handle. HTTP itself (h11, the pool,
proxy tunnels and forwarding) stays httpx's and httpcore's; which proxy and which trust is
decided in ``daemon.symbl.network``.
"""

# httpcore's network interface passes timeouts as arguments; the signatures are its, not ours.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

# anyio's default for connect_tcp: try the next address if one has not answered in 250 ms.
_HAPPY_EYEBALLS_DELAY = 0.25


@contextlib.contextmanager
def _mapped(timeout_error: type[Exception], io_error: type[Exception]) -> Iterator[None]:
    """Raise httpcore's exception types, which httpx maps to its own, for asyncio's."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout_error(str(exc) or "timed out") from exc
    except OSError as exc:  # ssl.SSLError and ConnectionError are OSErrors
        raise io_error(str(exc) or type(exc).__name__) from exc


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection as httpcore sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()

    async def aclose(self) -> None:
        # Like anyio: close and move on; waiting for a TLS close_notify could stall shutdown.
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
                async with asyncio.timeout(timeout):
                    await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            await self.aclose()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self.is_readable()
        extra = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername"}
        if info in extra:
            return self._writer.get_extra_info(extra[info])
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None

    def is_readable(self) -> bool:
        """An idle connection is readable only when the server closed it (or broke protocol).

        The event loop reads every socket as soon as data arrives, so what the server sent
        shows in the reader or the transport, without asking the kernel again.
        """
        return self._reader.at_eof() or self._writer.transport.is_closing()


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens :class:`AsyncioStream` connections; the only network backend the pool is given."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=local, happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY
                )
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` with the same settings, its pool on :class:`AsyncioBackend`.

    With an ``http://`` proxy the pool is httpcore's ``AsyncHTTPProxy`` (CONNECT tunnels for
    https targets, forwarding for http), as httpx builds it, on the same backend.
    """

    def __init__(
        self,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        ssl_context = ssl_context or httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        # httpx builds its pool without a way to name the network backend: build the same pool.
        if proxy is None:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=AsyncioBackend(),
            )
            return
        if proxy.url.scheme != "http":
            # TLS to the proxy and TLS inside it need anyio's TLS streams: use httpx's transport.
            raise ValueError("AsyncioTransport takes http:// proxies only")
        self._pool = httpcore.AsyncHTTPProxy(
            proxy_url=httpcore.URL(
                scheme=proxy.url.raw_scheme,
                host=proxy.url.raw_host,
                port=proxy.url.port,
                target=proxy.url.raw_path,
            ),
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )
