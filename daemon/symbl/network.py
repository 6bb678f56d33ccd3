"""How the client reaches Symbl: directly or through a proxy, and which certificates it trusts.

The route is decided once per client, for ``symbl.base_url`` (the one host it talks to):
``symbl.proxy`` when set, else the standard environment variables, read the way curl and
Python's ``urllib`` read them (``https_proxy``/``HTTPS_PROXY`` for an https base URL,
``http_proxy`` for http, ``all_proxy`` for either; lower case wins; ``no_proxy`` lists hosts
that go direct, matched by ``urllib.request.proxy_bypass_environment``).

Trust: the operating system's store through truststore, where IT installs a proxy's CA (certifi,
httpx's default, is a copy of Mozilla's list and never holds it), plus or instead of
``symbl.ca_file``. There is no way to turn verification off.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

# urllib's own NO_PROXY matching (suffixes, host:port, "*"); typeshed does not list it.
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

import httpx
import truststore

from daemon.config.model import PROXY_SCHEMES, SymblSettings
from daemon.logs import MASK
from daemon.symbl.transport import AsyncioTransport

__all__ = [
    "Route",
    "ca_file_problem",
    "describe_transport_error",
    "environment_proxy_problem",
    "proxy_password_in",
    "route_for",
    "ssl_context",
    "transport_for",
    "without_password",
]


@dataclass(frozen=True)
class Route:
    """The way to ``symbl.base_url``: ``proxy`` (with its credentials) or direct."""

    proxy: str | None
    # What decided it, in the words of the configuration: "symbl.proxy", "https_proxy", ...
    source: str

    @property
    def shown(self) -> str:
        """For logs, errors and status: the proxy URL with its password as ``***``."""
        return masked_url(self.proxy) if self.proxy else "direct"

    def describe(self) -> str:
        if self.proxy is None:
            return f"direct ({self.source})"
        return f"through proxy {self.shown} (from {self.source})"


# ---------------------------------------------------------------- URLs and credentials


def proxy_password_in(url: str) -> str | None:
    """The password written into a proxy URL, decoded, if any."""
    password = urlsplit(url).password
    return unquote(password) if password else None


def without_password(url: str) -> str:
    """The URL with its password left out (the user name stays)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=_netloc(parts.username, parts.netloc)))


def masked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = unquote(parts.username or "")
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{_host_port(parts.netloc)}"))


def _with_password(url: str, password: str | None) -> str:
    if not password:
        return url
    parts = urlsplit(url)
    user = quote(unquote(parts.username or ""), safe="")
    netloc = f"{user}:{quote(password, safe='')}@{_host_port(parts.netloc)}"
    return urlunsplit(parts._replace(netloc=netloc))


def _host_port(netloc: str) -> str:
    return netloc.rpartition("@")[2]


def _netloc(username: str | None, netloc: str) -> str:
    return f"{username}@{_host_port(netloc)}" if username else _host_port(netloc)


# ---------------------------------------------------------------- the route


def _environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``{"https": ..., "http": ..., "all": ..., "no": ...}`` as ``urllib`` reads them."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if name.lower().endswith("_proxy") and value:
            proxies[name[:-6].lower()] = value
    for name, value in environ.items():  # lower case wins, as in curl and urllib
        if name.lower().endswith("_proxy") and name.islower():
            if value:
                proxies[name[:-6]] = value
            else:
                proxies.pop(name[:-6], None)
    return proxies


def _from_environment(base_url: str, environ: Mapping[str, str]) -> Route:
    parts = urlsplit(base_url)
    proxies = _environment_proxies(environ)
    host = parts.hostname or ""
    target = f"{host}:{parts.port}" if parts.port else host
    if "no" in proxies and proxy_bypass_environment(target, proxies):
        return Route(None, f"{host} is in no_proxy")
    for key in (parts.scheme, "all"):
        if key in proxies:
            value = proxies[key]
            url = value if "://" in value else f"http://{value}"
            return Route(url, f"{key}_proxy")
    return Route(None, "no proxy configured")


def route_for(settings: SymblSettings, environ: Mapping[str, str]) -> Route:
    """``symbl.proxy`` (with ``proxy_password``) if set, else what the environment says."""
    if settings.proxy:
        return Route(_with_password(settings.proxy, settings.proxy_password), "symbl.proxy")
    return _from_environment(settings.base_url, environ)


def environment_proxy_problem(base_url: str, environ: Mapping[str, str]) -> str | None:
    """Why the proxy the environment names for ``base_url`` cannot be used, if it cannot."""
    route = _from_environment(base_url, environ)
    if route.proxy is None:
        return None
    parts = urlsplit(route.proxy)
    variable = route.source
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname or not port_ok:
        schemes = ", ".join(f"{scheme}://" for scheme in PROXY_SCHEMES)
        return (
            f"the environment's {variable} is {masked_url(route.proxy)!r}, which is not a "
            f"proxy this daemon can use ({schemes}); set symbl.proxy, or list the API's host "
            "in no_proxy"
        )
    return None


# ---------------------------------------------------------------- trust


def ca_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA bundle, if it cannot."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            return f"{path} holds no PEM certificate"
        return f"cannot read {path}: {exc.strerror or exc}"
    if not context.cert_store_stats().get("x509_ca"):
        return f"{path} holds no CA certificate"
    return None


def ssl_context(settings: SymblSettings) -> ssl.SSLContext:
    """Verification always on: the system's store and/or ``symbl.ca_file``."""
    if settings.ca_mode == "replace" and settings.ca_file is not None:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def transport_for(
    settings: SymblSettings, limits: httpx.Limits, route: Route
) -> httpx.AsyncBaseTransport:
    """The project's asyncio transport, directly or through an http:// proxy; for an https://
    proxy (TLS inside TLS) httpx's own transport, which anyio's TLS streams can nest."""
    context = ssl_context(settings)
    if route.proxy is None:
        return AsyncioTransport(limits, context)
    if route.proxy.startswith("http://"):
        return AsyncioTransport(limits, context, httpx.Proxy(route.proxy))
    # The proxy's own certificate is checked against the same trust as the API's.
    proxy = httpx.Proxy(route.proxy, ssl_context=context)
    return httpx.AsyncHTTPTransport(verify=context, limits=limits, proxy=proxy)


# ---------------------------------------------------------------- errors in words


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe_transport_error(exc: httpx.TransportError, host: str, route: Route) -> str:
    """One line that says what failed: the certificate, the proxy, or the connection."""
    certificate = _certificate_error(exc)
    if certificate is not None:
        problem = certificate.verify_message or certificate.reason or "unknown reason"
        hint = "your proxy's CA bundle" if route.proxy else "the CA bundle that signed it"
        return f"certificate verify failed: {problem} for {host} — set symbl.ca_file to {hint}"
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ProxyError):
        return f"proxy {route.shown} refused the tunnel to {host}: {detail}"
    if route.proxy is not None:
        return f"{type(exc).__name__}: {detail} (through proxy {route.shown})"
    return f"{type(exc).__name__}: {detail}"
