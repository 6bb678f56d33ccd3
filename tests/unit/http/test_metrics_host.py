"""Metrics say which host of a cluster answers, as an info series to join on."""

from __future__ import annotations

from daemon.http.metrics import Metrics


class TestHostInfo:
    """``symbl_inbox_host_info`` carries cluster.host_id."""

    async def test_the_host_id_is_an_info_series(self) -> None:
        text = (await Metrics(host_id="host-a").render())[0].decode()
        assert 'symbl_inbox_host_info{host_id="host-a"} 1.0' in text

    async def test_without_a_host_id_no_info(self) -> None:
        assert "symbl_inbox_host_info" not in (await Metrics().render())[0].decode()
