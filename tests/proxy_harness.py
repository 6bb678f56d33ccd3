"""A real forwarding proxy on loopback for tests: Debian's tinyproxy, started per test.

tinyproxy forwards http requests (adding ``Via: 1.1 ... (tinyproxy/...)``, which the emulator
records) and tunnels https through CONNECT; its log names every request it handled.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import trustme

from daemon.emulator import EmulatorServer, EmulatorSettings, TlsFiles

_START_TIMEOUT = 10.0


def free_port() -> int:
    """A loopback port nothing listens on now (tinyproxy cannot be told to pick one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Tinyproxy:
    """``with Tinyproxy(tmp_path) as proxy: proxy.url``; ``basic_auth`` requires a login."""

    def __init__(self, folder: Path, basic_auth: tuple[str, str] | None = None) -> None:
        if shutil.which("tinyproxy") is None:
            raise RuntimeError("tinyproxy is not installed (Debian package tinyproxy)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / "tinyproxy.log"
        self.port = free_port()
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 120",
            f'LogFile "{self.log_path}"',
            "LogLevel Connect",
            "MaxClients 200",
            "Allow 127.0.0.1",
        ]
        if basic_auth is not None:
            lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
        self.config_path = folder / "tinyproxy.conf"
        self.config_path.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["tinyproxy", "-d", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._accepting():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tinyproxy did not start: {self.log_text()}")
            time.sleep(0.01)

    def _accepting(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Tinyproxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def requests(self) -> list[str]:
        """``GET http://127.0.0.1:1234/v1/job/x`` or ``CONNECT 127.0.0.1:1234`` per request."""
        return re.findall(r"Request \(file descriptor \d+\): (\S+ \S+)", self.log_text())


class HttpsProxy(Tinyproxy):
    """proxy.py (from PyPI) listening with TLS: an ``https://`` proxy, its certificate for
    127.0.0.1 signed by ``authority``. It logs one access line per request it forwarded."""

    def __init__(self, folder: Path, authority: trustme.CA) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.log_path = folder / "proxy.py.log"
        self.port = free_port()
        certificate = authority.issue_cert("127.0.0.1")
        self.certfile, self.keyfile = folder / "proxy.pem", folder / "proxy.key"
        self.certfile.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
        certificate.private_key_pem.write_to_path(str(self.keyfile))
        self.process = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(self.port),
             "--cert-file", str(self.certfile), "--key-file", str(self.keyfile),
             "--num-acceptors", "1", "--log-level", "INFO", "--log-file", str(self.log_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT * 3  # its start-up imports are slow
        while not self._accepting():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"proxy.py did not start: {self.log_text()}")
            time.sleep(0.05)

    def requests(self) -> list[str]:
        """``GET 127.0.0.1:1234/v1/job/x`` per request forwarded."""
        return re.findall(r"access_log:\d+ - \S+ - (\S+ \S+) - ", self.log_text())


@contextlib.contextmanager
def tls_emulator(folder: Path, authority: trustme.CA) -> Iterator[EmulatorServer]:
    """The emulator over HTTPS with a certificate for 127.0.0.1 that ``authority`` signed."""
    certificate = authority.issue_cert("127.0.0.1")
    certfile, keyfile = folder / "server.pem", folder / "server.key"
    certfile.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    certificate.private_key_pem.write_to_path(str(keyfile))
    settings = EmulatorSettings(job_seconds=0.3, seed=1)
    with EmulatorServer(settings, tls=TlsFiles(str(certfile), str(keyfile))) as server:
        yield server
