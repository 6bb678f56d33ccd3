"""The unit file keeps its promises: what the daemon needs, and a reason beside each setting."""

from __future__ import annotations

from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "symbl-inbox.service"
# Lines that need no explanation of their own.
SELF_EXPLAINING = ("Description", "Documentation", "ExecStart", "Restart", "RestartSec", "User")


def directives(section: str) -> list[tuple[str, str, str | None]]:
    """(key, value, the comment line just above it or None) for each line of ``section``."""
    found: list[tuple[str, str, str | None]] = []
    current = None
    previous: str | None = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            current = line
        elif line and not line.startswith("#") and current == f"[{section}]":
            key, _, value = line.partition("=")
            found.append((key, value, previous if previous and previous.startswith("#") else None))
        previous = line
    return found


def settings(section: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for key, value, _ in directives(section):
        result.setdefault(key, []).append(value)
    return result


class TestServiceSection:
    """The settings the daemon's behaviour relies on are there, with the right values."""

    def test_lifecycle_settings(self) -> None:
        service = settings("Service")
        assert service["Type"] == ["notify"]
        assert service["NotifyAccess"] == ["main"]
        assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
        assert service["Restart"] == ["on-failure"]
        assert service["RestartPreventExitStatus"] == ["2"]
        assert service["StateDirectory"] == ["symbl-inbox"]
        assert service["User"] == ["symbl-inbox"] and service["Group"] == ["symbl-inbox"]
        assert service["LoadCredential"] == ["symbl-app-secret:/etc/symbl-inbox/app-secret"]
        assert service["ExecStart"][0].endswith(" run --log-format json")

    def test_stop_timeout_exceeds_the_daemons_own_shutdown_bound(self) -> None:
        [timeout] = settings("Service")["TimeoutStopSec"]
        assert int(timeout.removesuffix("s")) > 20

    def test_sandbox_leaves_the_sockets_the_daemon_needs(self) -> None:
        [families] = settings("Service")["RestrictAddressFamilies"]
        assert set(families.split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
        assert settings("Service")["ReadWritePaths"] == ["/srv/audio"]

    def test_every_setting_carries_a_comment(self) -> None:
        bare = [
            key
            for key, _, comment in directives("Service")
            if comment is None and key not in SELF_EXPLAINING
        ]
        assert bare == []
