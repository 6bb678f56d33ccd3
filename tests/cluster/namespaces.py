"""Hosts as network namespaces: each daemon runs in a namespace of its own, joined to the test's
machine by a veth pair on a bridge the test creates (a private 10.x.y.0/24), so the hosts reach
PostgreSQL and the emulator over a network, not over their own loopback.

Only root can make namespaces; ``unavailable()`` says why not, and the tests then run the
daemons as plain processes. Everything made here is removed by ``close()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    probe = f"sip{os.getpid() % 100000}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot make a network namespace: {exc}"
    _ip("netns", "del", probe)
    return None


class Namespaces:
    """``count`` namespaces on one bridge; the test's side of the bridge is ``gateway``."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 10000
        subnet = f"10.{200 + tag % 50}.{tag % 250}"
        self.gateway = f"{subnet}.1"
        self._subnet = subnet
        self.bridge = f"sbr{tag}"
        self.names = [f"sns{tag}-{n}" for n in range(count)]
        self._links = [f"sv{tag}h{n}" for n in range(count)]
        self._made: list[tuple[str, ...]] = []
        try:
            self._make(subnet)
        except BaseException:
            self.close()
            raise

    def _make(self, subnet: str) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", "del", self.bridge))
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for n, (name, link) in enumerate(zip(self.names, self._links, strict=True)):
            inside = f"sv{link[2:]}n"
            _ip("netns", "add", name)
            self._made.append(("netns", "del", name))
            _ip("link", "add", link, "type", "veth", "peer", "name", inside)
            self._made.append(("link", "del", link))
            _ip("link", "set", inside, "netns", name)
            _ip("link", "set", link, "master", self.bridge)
            _ip("link", "set", link, "up")
            _ip("-n", name, "addr", "add", f"{subnet}.{n + 2}/24", "dev", inside)
            _ip("-n", name, "link", "set", inside, "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def address(self, n: int) -> str:
        """Namespace ``n``'s own address, reachable from the test's side of the bridge."""
        return f"{self._subnet}.{n + 2}"

    def prefix(self, n: int) -> tuple[str, ...]:
        """The command prefix that runs a process inside namespace ``n``."""
        return ("ip", "netns", "exec", self.names[n])

    def close(self) -> None:
        for command in reversed(self._made):
            try:
                _ip(*command)
            except (subprocess.CalledProcessError, OSError):
                continue  # gone with its namespace already
        self._made.clear()
