"""The daemon behind a real proxy (tinyproxy on loopback) and behind TLS from a private CA.

Plain http to the emulator shows forwarding: every request the emulator receives carries the
Via header tinyproxy adds. HTTPS to an emulator whose certificate comes from a throwaway CA,
tunnelled through tinyproxy with CONNECT, stands in for a proxy that re-signs TLS: the daemon
accepts it with ``symbl.ca_file`` and otherwise says in one line what is wrong with it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import proxy_harness
import pytest
import trustme
from e2e_harness import DaemonHarness, wait_until
from proxy_harness import Tinyproxy
from sox_audio import sox_wav

from daemon.emulator import EmulatorServer

SECRET_PROXY_PASSWORD = "pr0xy-Pa55-never-shown"


def api_requests(emulator: EmulatorServer) -> list[tuple[str, str | None]]:
    return [(record.path, record.via) for record in emulator.state.requests]


class TestForwardingProxy:
    """HTTP_PROXY, symbl.proxy and NO_PROXY decide the route of every request the daemon sends."""

    def test_every_request_goes_through_the_proxy_from_the_environment(
        self, harness: DaemonHarness, tinyproxy: Tinyproxy
    ) -> None:
        harness.start(env={"HTTP_PROXY": tinyproxy.url})
        sox_wav(harness.inbox / "call.wav")
        harness.wait_filed(1)
        assert harness.results()["call.wav"]["status"] == "completed"
        seen = api_requests(harness.emulator)
        assert len(seen) >= 3  # token, upload, job status
        assert all(via and "tinyproxy" in via for _, via in seen), seen
        assert len(tinyproxy.requests()) == len(seen)

    def test_faults_behind_the_proxy_are_retried_and_nothing_is_lost(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
        tinyproxy: Tinyproxy,
    ) -> None:
        """Streamed uploads re-sent after 5xx answers and dropped connections, all proxied."""
        flaky = emulator_factory(fault_rate=0.3, lost_response_rate=0.2)
        harness = harness_factory(emulator=flaky)
        harness.start(env={"HTTP_PROXY": tinyproxy.url})
        for number, seconds in enumerate((0.5, 8.0, 1.0, 3.0)):
            sox_wav(harness.inbox / f"call-{number}.wav", seconds)
        harness.wait_filed(4, timeout=60)
        assert harness.errors() == {}
        assert {record["status"] for record in harness.results().values()} == {"completed"}
        assert any(record.fault for record in flaky.state.requests)  # faults did happen
        assert all(via and "tinyproxy" in via for _, via in api_requests(flaky))

    def test_a_proxy_added_by_reload_carries_the_next_requests(
        self, harness: DaemonHarness, tinyproxy: Tinyproxy
    ) -> None:
        harness.start()
        sox_wav(harness.inbox / "before.wav")
        harness.wait_filed(1)
        direct = len(harness.emulator.state.requests)
        assert all(via is None for _, via in api_requests(harness.emulator))
        harness.write_config(symbl_options={"proxy": tinyproxy.url})
        reloads = harness.event_count("config_reloaded")
        assert harness.process is not None
        harness.process.send_signal(signal.SIGHUP)
        wait_until(lambda: harness.event_count("config_reloaded") > reloads, 15, "the reload")
        sox_wav(harness.inbox / "after.wav")
        harness.wait_filed(2)
        after = api_requests(harness.emulator)[direct:]
        assert after and all(via and "tinyproxy" in via for _, via in after)

    def test_no_proxy_sends_the_requests_direct(
        self, harness: DaemonHarness, tinyproxy: Tinyproxy
    ) -> None:
        harness.start(env={"http_proxy": tinyproxy.url, "no_proxy": "localhost,127.0.0.1"})
        sox_wav(harness.inbox / "call.wav")
        harness.wait_filed(1)
        assert harness.results()["call.wav"]["status"] == "completed"
        assert all(via is None for _, via in api_requests(harness.emulator))
        assert tinyproxy.requests() == []

    def test_symbl_proxy_with_a_password_file_overrides_the_environment(
        self,
        tmp_path: Path,
        harness_factory: Callable[..., DaemonHarness],
        tinyproxy: Tinyproxy,
    ) -> None:
        with Tinyproxy(tmp_path / "authproxy", ("alice", SECRET_PROXY_PASSWORD)) as guarded:
            password_file = tmp_path / "proxy-password"
            password_file.write_text(SECRET_PROXY_PASSWORD + "\n")
            harness = harness_factory(
                symbl_options={
                    "proxy": guarded.url.replace("http://", "http://alice@"),
                    "proxy_password_file": str(password_file),
                }
            )
            # The environment names another proxy; the configuration wins.
            harness.start(env={"HTTP_PROXY": tinyproxy.url})
            sox_wav(harness.inbox / "call.wav")
            harness.wait_filed(1)
            result_text = (harness.done / "call.wav.result.json").read_text()
            assert len(guarded.requests()) == len(harness.emulator.state.requests)
        assert tinyproxy.requests() == []
        assert SECRET_PROXY_PASSWORD not in harness.log_text()
        assert SECRET_PROXY_PASSWORD not in result_text

    def test_credentials_in_http_proxy_work_and_never_show(
        self, tmp_path: Path, harness: DaemonHarness
    ) -> None:
        with Tinyproxy(tmp_path / "authproxy", ("alice", SECRET_PROXY_PASSWORD)) as guarded:
            with_login = guarded.url.replace("http://", f"http://alice:{SECRET_PROXY_PASSWORD}@")
            harness.start(env={"HTTP_PROXY": with_login})
            sox_wav(harness.inbox / "call.wav")
            harness.wait_filed(1)
            assert len(guarded.requests()) == len(harness.emulator.state.requests)
        routes = [event["route"] for event in harness.events() if event["event"] == "symbl_route"]
        assert (
            routes[0]
            == f"through proxy http://alice:***@127.0.0.1:{guarded.port} (from http_proxy)"
        )
        assert SECRET_PROXY_PASSWORD not in harness.log_text()

    def test_a_proxy_asking_for_credentials_keeps_the_file_and_says_why(
        self,
        tmp_path: Path,
        harness_factory: Callable[..., DaemonHarness],
        tls_emulator: EmulatorServer,
    ) -> None:
        with Tinyproxy(tmp_path / "authproxy", ("alice", "the-right-one")) as guarded:
            harness = harness_factory(emulator=tls_emulator, symbl_options={"proxy": guarded.url})
            harness.start()
            sox_wav(harness.inbox / "call.wav")
            expected = (
                f"proxy {guarded.url} refused the tunnel to 127.0.0.1: "
                "407 Proxy Authentication Required"
            )
            wait_until(
                lambda: any(expected in event.get("error", "") for event in harness.events()),
                30,
                "the 407 in the log",
            )
            assert (harness.inbox / "call.wav").exists()
            assert harness.errors() == {}
            assert harness.event_count("internal_error") == 0


class TestHttpsProxy:
    """An https:// proxy: TLS to the proxy, checked against symbl.ca_file like the API."""

    def test_the_run_goes_through_it(
        self,
        tmp_path: Path,
        harness_factory: Callable[..., DaemonHarness],
        authority: trustme.CA,
    ) -> None:
        bundle = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(bundle))
        with proxy_harness.HttpsProxy(tmp_path / "https-proxy", authority) as proxy:
            harness = harness_factory(symbl_options={"proxy": proxy.url, "ca_file": str(bundle)})
            harness.start()
            sox_wav(harness.inbox / "call.wav")
            harness.wait_filed(1)
            assert harness.results()["call.wav"]["status"] == "completed"
            # proxy.py logs a connection's first request when the connection closes; the
            # daemon's kept-alive connections close when it stops.
            assert harness.stop() == 0
            wait_until(lambda: proxy.requests(), 10, "proxy.py's access log")
            assert proxy.requests()[0].startswith("POST 127.0.0.1:")
            assert proxy.requests()[0].endswith("/oauth2/token:generate")


class TestPrivateCertificateAuthority:
    """HTTPS through a CONNECT tunnel to a server whose certificate a private CA signed."""

    @pytest.mark.parametrize("ca_mode", ["add", "replace"])
    def test_accepted_with_ca_file(
        self,
        ca_mode: str,
        tmp_path: Path,
        harness_factory: Callable[..., DaemonHarness],
        tls_emulator: EmulatorServer,
        authority: trustme.CA,
        tinyproxy: Tinyproxy,
    ) -> None:
        bundle = tmp_path / "corporate-ca.pem"
        authority.cert_pem.write_to_path(str(bundle))
        harness = harness_factory(
            emulator=tls_emulator, symbl_options={"ca_file": str(bundle), "ca_mode": ca_mode}
        )
        harness.start(env={"HTTPS_PROXY": tinyproxy.url})
        sox_wav(harness.inbox / "call.wav", 30.0)  # ~1 MB streamed through the tunnel
        harness.wait_filed(1)
        assert harness.results()["call.wav"]["status"] == "completed"
        port = tls_emulator.base_url.rsplit(":", 1)[1]
        tunnels = tinyproxy.requests()
        assert tunnels and all(line == f"CONNECT 127.0.0.1:{port}" for line in tunnels)

    def test_a_ca_in_the_system_store_needs_no_ca_file(
        self,
        tmp_path: Path,
        harness_factory: Callable[..., DaemonHarness],
        tls_emulator: EmulatorServer,
        authority: trustme.CA,
        tinyproxy: Tinyproxy,
    ) -> None:
        """The system store is OpenSSL's (what update-ca-certificates writes); SSL_CERT_FILE
        points it elsewhere, which stands in here for installing the CA system-wide."""
        system_store = tmp_path / "system-store.pem"
        authority.cert_pem.write_to_path(str(system_store))
        harness = harness_factory(emulator=tls_emulator)
        harness.start(env={"HTTPS_PROXY": tinyproxy.url, "SSL_CERT_FILE": str(system_store)})
        sox_wav(harness.inbox / "call.wav")
        harness.wait_filed(1)
        assert harness.results()["call.wav"]["status"] == "completed"

    def test_refused_without_it_with_one_clear_line(
        self,
        harness_factory: Callable[..., DaemonHarness],
        tls_emulator: EmulatorServer,
        tinyproxy: Tinyproxy,
    ) -> None:
        harness = harness_factory(emulator=tls_emulator)
        harness.start(env={"HTTPS_PROXY": tinyproxy.url})
        sox_wav(harness.inbox / "call.wav")
        expected = (
            "certificate verify failed: unable to get local issuer certificate for 127.0.0.1 "
            "— set symbl.ca_file to your proxy's CA bundle"
        )
        wait_until(
            lambda: any(
                event.get("event") == "upload_deferred" and expected in event.get("error", "")
                for event in harness.events()
            ),
            30,
            "the certificate problem in the log",
        )
        assert tls_emulator.state.submissions == []
        assert (harness.inbox / "call.wav").exists()
        assert harness.errors() == {}
        # At start too (the first token) it is that line, never a traceback.
        assert harness.event_count("internal_error") == 0
        assert any(
            event.get("event") == "symbl_unreachable" and expected in event["error"]
            for event in harness.events()
        )
