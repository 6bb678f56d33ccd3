"""``submit`` and ``check-config --connect`` behind a real proxy (tinyproxy) and a private CA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import proxy_harness
import trustme
from proxy_harness import Tinyproxy
from service_harness import Site
from sox_audio import sox_wav

from daemon.emulator import EmulatorServer

PROXY_PASSWORD = "s3cret-proxy-pass"


def recording(tmp_path: Path) -> Path:
    return sox_wav(tmp_path / "one-off.wav", rate=8000)


def vias(emulator: EmulatorServer) -> list[str | None]:
    return [record.via for record in emulator.state.requests]


class TestSubmitThroughAProxy:
    """``submit`` honours the proxy variables like the daemon."""

    def test_every_request_goes_through_http_proxy(
        self, site: Site, emulator: EmulatorServer, tinyproxy: Tinyproxy, tmp_path: Path
    ) -> None:
        result = site.cli(
            "submit", str(recording(tmp_path)), "--profile", "default", "--wait",
            env={"HTTP_PROXY": tinyproxy.url},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith("status: completed")
        seen = vias(emulator)
        assert len(seen) >= 3 and all(via and "tinyproxy" in via for via in seen), seen
        assert len(tinyproxy.requests()) == len(seen)

    def test_no_proxy_goes_direct(
        self, site: Site, emulator: EmulatorServer, tinyproxy: Tinyproxy, tmp_path: Path
    ) -> None:
        result = site.cli(
            "submit", str(recording(tmp_path)), "--profile", "default",
            env={"HTTP_PROXY": tinyproxy.url, "NO_PROXY": "127.0.0.1"},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert vias(emulator) and all(via is None for via in vias(emulator))
        assert tinyproxy.requests() == []


class TestCheckConfigConnect:
    """``check-config --connect`` gets a token the daemon's way and names what failed."""

    def test_reports_the_route_and_success(
        self, site: Site, emulator: EmulatorServer, tinyproxy: Tinyproxy
    ) -> None:
        result = site.cli("check-config", "--connect", env={"http_proxy": tinyproxy.url})
        assert result.returncode == 0, result.stderr
        assert (
            f"connect: got a token from {emulator.base_url} through proxy {tinyproxy.url} "
            "(from http_proxy)" in result.stderr
        )
        assert vias(emulator) and all(via and "tinyproxy" in via for via in vias(emulator))

    def test_refused_credentials_are_named(
        self, tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        strict = emulator_factory(app_id="service-tests", app_secret="another-secret")
        site = Site(tmp_path / "site", strict.base_url)
        result = site.cli("check-config", "--connect")
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f"connect: cannot get a token from {strict.base_url} direct (no proxy configured): "
            "Symbl refused the credentials of app 'service-tests' (HTTP 401); "
            "check symbl.app_id and symbl.app_secret"
        )

    def test_without_connect_nothing_is_sent(
        self, site: Site, emulator: EmulatorServer, tinyproxy: Tinyproxy
    ) -> None:
        assert site.cli("check-config", env={"http_proxy": tinyproxy.url}).returncode == 0
        assert emulator.state.requests == [] and tinyproxy.requests() == []

    def test_a_dead_proxy_is_named(self, site: Site) -> None:
        dead = f"http://127.0.0.1:{proxy_harness.free_port()}"
        result = site.cli("check-config", "--connect", env={"HTTP_PROXY": dead})
        assert result.returncode == 1
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith(f"connect: cannot get a token from {site.base_url} through proxy")
        assert f"(through proxy {dead})" in line

    def test_the_proxy_password_is_masked_everywhere(
        self, tmp_path: Path, emulator: EmulatorServer
    ) -> None:
        with Tinyproxy(tmp_path / "guarded", ("alice", PROXY_PASSWORD)) as guarded:
            password_file = tmp_path / "proxy-password"
            password_file.write_text(PROXY_PASSWORD + "\n")
            site = Site(
                tmp_path / "site",
                emulator.base_url,
                symbl_extra=(
                    f"  proxy: {guarded.url.replace('http://', 'http://alice@')}\n"
                    f"  proxy_password_file: {password_file}\n"
                ),
            )
            result = site.cli("check-config", "--connect")
            assert result.returncode == 0, result.stderr
            assert guarded.requests()
        assert PROXY_PASSWORD not in result.stdout + result.stderr
        assert "proxy_password: '***'" in result.stdout
        assert f"through proxy http://alice:***@127.0.0.1:{guarded.port}" in result.stderr

    def test_a_private_ca_without_ca_file_is_one_clear_line(
        self, tmp_path: Path, tls_emulator: EmulatorServer, tinyproxy: Tinyproxy
    ) -> None:
        site = Site(tmp_path / "site", tls_emulator.base_url)
        result = site.cli("check-config", "--connect", env={"HTTPS_PROXY": tinyproxy.url})
        assert result.returncode == 1
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .endswith(
                ": certificate verify failed: unable to get local issuer certificate for "
                "127.0.0.1 — set symbl.ca_file to your proxy's CA bundle"
            )
        )

    def test_a_private_ca_with_ca_file_connects(
        self,
        tmp_path: Path,
        tls_emulator: EmulatorServer,
        authority: trustme.CA,
        tinyproxy: Tinyproxy,
    ) -> None:
        bundle = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(bundle))
        site = Site(tmp_path / "site", tls_emulator.base_url, symbl_extra=f"  ca_file: {bundle}\n")
        result = site.cli("check-config", "--connect", env={"HTTPS_PROXY": tinyproxy.url})
        assert result.returncode == 0, result.stderr
        assert "connect: got a token" in result.stderr
        assert tinyproxy.requests()[0].startswith("CONNECT 127.0.0.1:")


class TestCommandsThatNeverConnect:
    """status never talks to Symbl: a proxy variable it could not use does not stop it."""

    def test_status_ignores_an_unusable_proxy_variable(self, site: Site) -> None:
        unusable = {"ALL_PROXY": "socks5://proxy:1080"}
        assert site.cli("status", env=unusable).returncode == 0
        refused = site.cli("check-config", "--connect", env=unusable)
        assert refused.returncode == 2
        assert "all_proxy is 'socks5://proxy:1080'" in refused.stderr

    def test_symbl_proxy_from_a_variable(
        self, tmp_path: Path, emulator: EmulatorServer, tinyproxy: Tinyproxy
    ) -> None:
        site = Site(tmp_path / "site", emulator.base_url, symbl_extra="  proxy: ${CORP_PROXY}\n")
        result = site.cli("check-config", "--connect", env={"CORP_PROXY": tinyproxy.url})
        assert result.returncode == 0, result.stderr
        assert f"through proxy {tinyproxy.url} (from symbl.proxy)" in result.stderr
        assert len(tinyproxy.requests()) == 1
