"""daemon.files.dropped: sidecars and URL drops are parsed within limits."""

from __future__ import annotations

import pytest

from daemon.files.dropped import MAX_NESTING, parse_directions
from daemon.files.intake import DirectionsError, directions_from_document


class TestLimits:
    """Aliases, deep nesting and non-UTF-8 text are refused with a pointed message."""

    def test_an_alias_bomb_is_refused_before_it_expands(self) -> None:
        bomb = "a: &a [x, x]\nb: &b [*a, *a]\n" + "params: {name: *b}\n"
        with pytest.raises(DirectionsError) as raised:
            parse_directions(bomb.encode(), "x.wav.yaml")
        assert raised.value.lines == [
            "x.wav.yaml:2: YAML syntax error: aliases (*name) are not accepted in sidecars "
            "and URL drops"
        ]

    def test_nesting_is_bounded(self) -> None:
        ok = "params: " + "[" * (MAX_NESTING - 2) + "]" * (MAX_NESTING - 2)
        parse_directions(ok.encode(), "x.wav.yaml")
        deep = "params: " + "[" * 100000 + "]" * 100000
        with pytest.raises(DirectionsError) as raised:
            parse_directions(deep.encode(), "x.wav.yaml")
        assert "nested deeper than 16 levels" in raised.value.lines[0]

    def test_a_private_file_is_never_echoed(self) -> None:
        with pytest.raises(DirectionsError) as raised:
            parse_directions(b"password: [unclosed\n", "x.wav.yaml", private=True)
        assert "password" not in str(raised.value.lines) and "withheld" in raised.value.lines[0]
        document = parse_directions(b"password: 1\n", "x.wav.yaml", private=True)
        with pytest.raises(DirectionsError) as raised:
            directions_from_document(document, "x.wav.yaml", False, {}, private=True)
        assert "password" not in str(raised.value.lines)


class TestWhatASidecarMaySay:
    """conversationId is digits; the daemon's own parameters are not the sidecar's."""

    @pytest.mark.parametrize("value", ["12/../../v1/job/x", "12?x=1", "abc", "1 2"])
    def test_conversation_id_must_be_digits(self, value: str) -> None:
        document = parse_directions(f"conversationId: '{value}'\n".encode(), "x.wav.yaml")
        with pytest.raises(DirectionsError) as raised:
            directions_from_document(document, "x.wav.yaml", False, {})
        assert raised.value.lines == [
            "x.wav.yaml:1: conversationId: must be a Symbl conversationId: digits only"
        ]

    def test_webhook_url_is_the_daemons(self) -> None:
        text = b"params:\n  webhookUrl: http://127.0.0.1:9/x\n"
        document = parse_directions(text, "x.wav.yaml")
        with pytest.raises(DirectionsError) as raised:
            directions_from_document(document, "x.wav.yaml", False, {})
        assert raised.value.lines == [
            "x.wav.yaml:2: params.webhookUrl: is set by the daemon; a sidecar may not set it"
        ]
        ok = parse_directions(b"conversationId: 5024302367416320\n", "x.wav.yaml")
        directions = directions_from_document(ok, "x.wav.yaml", False, {})
        assert directions.conversation_id == "5024302367416320"
