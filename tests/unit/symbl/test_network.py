"""The route to the API and the trust settings: pure decisions over settings and environment."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from daemon.config.model import SymblSettings
from daemon.symbl.network import (
    Route,
    ca_file_problem,
    describe_transport_error,
    environment_proxy_problem,
    route_for,
    without_password,
)


def settings(base_url: str = "https://api.symbl.ai", **more: object) -> SymblSettings:
    return SymblSettings(base_url=base_url, app_id="app", app_secret="secret", **more)  # type: ignore[arg-type]


class TestRoute:
    """Which proxy, if any, carries the requests to base_url."""

    def test_no_variables_means_direct(self) -> None:
        assert route_for(settings(), {}).proxy is None

    def test_https_proxy_for_an_https_api(self) -> None:
        route = route_for(settings(), {"HTTPS_PROXY": "http://proxy:3128"})
        assert route == Route("http://proxy:3128", "https_proxy")

    def test_http_proxy_is_not_used_for_an_https_api(self) -> None:
        assert route_for(settings(), {"HTTP_PROXY": "http://proxy:3128"}).proxy is None

    def test_http_proxy_for_an_http_api(self) -> None:
        route = route_for(settings("http://emulator:8080"), {"http_proxy": "http://p:1"})
        assert route.proxy == "http://p:1"

    def test_all_proxy_is_the_fallback(self) -> None:
        assert route_for(settings(), {"ALL_PROXY": "http://p:1"}).proxy == "http://p:1"

    def test_lower_case_wins(self) -> None:
        environ = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}
        assert route_for(settings(), environ).proxy == "http://lower:2"

    def test_an_empty_lower_case_variable_turns_the_upper_case_one_off(self) -> None:
        environ = {"HTTPS_PROXY": "http://upper:1", "https_proxy": ""}
        assert route_for(settings(), environ).proxy is None

    def test_a_bare_host_port_is_an_http_proxy(self) -> None:
        assert route_for(settings(), {"HTTPS_PROXY": "proxy:3128"}).proxy == "http://proxy:3128"

    @pytest.mark.parametrize(
        "no_proxy", ["api.symbl.ai", ".symbl.ai", "symbl.ai", "*", "other.example, api.symbl.ai"]
    )
    def test_no_proxy_sends_the_api_direct(self, no_proxy: str) -> None:
        environ = {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy}
        route = route_for(settings(), environ)
        assert route.proxy is None
        assert "no_proxy" in route.describe()

    def test_no_proxy_for_another_host_keeps_the_proxy(self) -> None:
        environ = {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "example.com"}
        assert route_for(settings(), environ).proxy == "http://proxy:3128"

    def test_symbl_proxy_overrides_the_environment(self) -> None:
        environ = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
        route = route_for(settings(proxy="http://configured:2"), environ)
        assert route == Route("http://configured:2", "symbl.proxy")

    def test_the_password_file_goes_into_the_url_and_is_masked_when_shown(self) -> None:
        configured = settings(proxy="http://alice@proxy:3128", proxy_password="p@ss:word/1")
        route = route_for(configured, {})
        assert httpx.Proxy(route.proxy or "").auth == ("alice", "p@ss:word/1")
        assert route.shown == "http://alice:***@proxy:3128"
        assert "p@ss" not in route.describe()

    def test_without_password_keeps_the_user(self) -> None:
        assert without_password("http://bob:hunter2@proxy:3128") == "http://bob@proxy:3128"


class TestEnvironmentProblems:
    """A proxy variable the daemon cannot use is a configuration problem, said plainly."""

    def test_socks_is_refused_with_the_way_out(self) -> None:
        problem = environment_proxy_problem(
            "https://api.symbl.ai", {"ALL_PROXY": "socks5://u:secret@proxy:1080"}
        )
        assert problem is not None
        assert "all_proxy" in problem and "no_proxy" in problem and "symbl.proxy" in problem
        assert "secret" not in problem

    def test_a_usable_or_bypassed_proxy_is_no_problem(self) -> None:
        assert environment_proxy_problem("https://a.b", {"HTTPS_PROXY": "http://p:1"}) is None
        bypassed = {"ALL_PROXY": "socks5://p:1", "NO_PROXY": "a.b"}
        assert environment_proxy_problem("https://a.b", bypassed) is None


class TestTrust:
    """The CA bundle is checked when the configuration loads, and failures read as one line."""

    def test_a_bundle_with_a_ca_is_fine(self, tmp_path: Path) -> None:
        path = tmp_path / "ca.pem"
        trustme.CA().cert_pem.write_to_path(str(path))
        assert ca_file_problem(path) is None

    def test_missing_empty_and_garbage_bundles_are_named(self, tmp_path: Path) -> None:
        assert "does not exist" in (ca_file_problem(tmp_path / "nope.pem") or "")
        garbage = tmp_path / "garbage.pem"
        garbage.write_text("not a certificate\n")
        assert "no PEM certificate" in (ca_file_problem(garbage) or "")

    def test_a_verification_failure_is_one_line_naming_the_problem_and_the_key(self) -> None:
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        cause.verify_message = "unable to get local issuer certificate"
        error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] ...")
        error.__cause__ = cause
        text = describe_transport_error(error, "api.symbl.ai", Route("http://p:1", "symbl.proxy"))
        assert text == (
            "certificate verify failed: unable to get local issuer certificate for "
            "api.symbl.ai — set symbl.ca_file to your proxy's CA bundle"
        )

    def test_a_proxy_refusal_names_the_proxy_without_its_password(self) -> None:
        error = httpx.ProxyError("407 Proxy Authentication Required")
        route = Route("http://u:pw@proxy:3128", "symbl.proxy")
        text = describe_transport_error(error, "api.symbl.ai", route)
        assert text == (
            "proxy http://u:***@proxy:3128 refused the tunnel to api.symbl.ai: "
            "407 Proxy Authentication Required"
        )
