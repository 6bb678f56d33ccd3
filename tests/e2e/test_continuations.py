"""Continuations and URL drops: parts reach Symbl as POST then PUTs, strictly in part order."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import httpx
from e2e_harness import DaemonHarness, sha256_of, wait_until

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav
from daemon.journal import JOURNAL_NAME

PATTERN = r"^(?P<conversation>rec-\d+)-part(?P<part>\d+)\.wav$"


def drop_part(harness: DaemonHarness, name: str, key: str, part: int | None, seconds: float) -> str:
    """Sidecar first (as the README asks), then the audio; returns the audio's sha256."""
    sidecar = f"conversation: {key}\n" + (f"part: {part}\n" if part is not None else "")
    (harness.inbox / f"{name}.yaml").write_text(sidecar)
    data = make_wav(seconds)
    (harness.inbox / name).write_bytes(data)
    return sha256_of(data)


def calls_for(server: EmulatorServer, shas: list[str]) -> list[tuple[str, str, str]]:
    """(method, path kind, conversationId) of the submissions of these files, in arrival order."""
    wanted = set(shas)
    return [
        (record.method, record.kind, record.conversation_id)
        for record in server.state.submissions
        if record.sha256 in wanted
    ]


def shas_in_order(server: EmulatorServer, shas: list[str]) -> list[str]:
    wanted = set(shas)
    return [record.sha256 for record in server.state.submissions if record.sha256 in wanted]


class TestPartOrder:
    """Parts go out strictly in order, one at a time, whatever order they arrive in."""

    def test_parts_arriving_3_1_2_reach_the_api_as_post_1_put_2_put_3(
        self, harness: DaemonHarness
    ) -> None:
        harness.start()
        third = drop_part(harness, "c-3.wav", "weekly", 3, 0.31)
        wait_until(lambda: harness.event_count("part_held") == 1, 10, "part 3 to be held")
        first = drop_part(harness, "c-1.wav", "weekly", 1, 0.11)
        second = drop_part(harness, "c-2.wav", "weekly", 2, 0.21)
        harness.wait_filed(3)
        server = harness.emulator
        assert shas_in_order(server, [first, second, third]) == [first, second, third]
        calls = calls_for(server, [first, second, third])
        conversation_id = calls[0][2]
        assert calls == [
            ("POST", "file", conversation_id),
            ("PUT", "file", conversation_id),
            ("PUT", "file", conversation_id),
        ]
        paths = [r.path for r in server.state.submissions]
        assert paths == ["/v1/process/audio"] + [f"/v1/process/audio/{conversation_id}"] * 2
        results = harness.results()
        for number, name in enumerate(("c-1.wav", "c-2.wav", "c-3.wav"), start=1):
            assert results[name]["conversation"] == {
                "key": "weekly",
                "part": number,
                "conversationId": conversation_id,
            }

    def test_two_conversations_interleaved_stay_apart_and_in_order(
        self, harness: DaemonHarness
    ) -> None:
        harness.start()
        a2 = drop_part(harness, "a-2.wav", "alpha", 2, 0.12)
        b1 = drop_part(harness, "b-1.wav", "beta", 1, 0.21)
        a1 = drop_part(harness, "a-1.wav", "alpha", 1, 0.11)
        b3 = drop_part(harness, "b-3.wav", "beta", 3, 0.23)
        b2 = drop_part(harness, "b-2.wav", "beta", 2, 0.22)
        harness.wait_filed(5)
        server = harness.emulator
        assert shas_in_order(server, [a1, a2]) == [a1, a2]
        assert shas_in_order(server, [b1, b2, b3]) == [b1, b2, b3]
        alpha = {c for _, _, c in calls_for(server, [a1, a2])}
        beta = {c for _, _, c in calls_for(server, [b1, b2, b3])}
        assert len(alpha) == 1 and len(beta) == 1 and alpha != beta

    def test_parts_without_numbers_are_appended_in_arrival_order(
        self, harness: DaemonHarness
    ) -> None:
        harness.start()
        first = drop_part(harness, "x.wav", "diary", None, 0.11)
        harness.wait_filed(1)
        second = drop_part(harness, "y.wav", "diary", None, 0.12)
        harness.wait_filed(2)
        calls = calls_for(harness.emulator, [first, second])
        assert [method for method, _, _ in calls] == ["POST", "PUT"]
        assert harness.results()["y.wav"]["conversation"]["part"] == 2

    def test_a_restart_between_parts_keeps_the_conversation(self, harness: DaemonHarness) -> None:
        harness.start()
        first = drop_part(harness, "r-1.wav", "restarted", 1, 0.11)
        harness.wait_filed(1)
        assert harness.stop() == 0
        harness.start()
        second = drop_part(harness, "r-2.wav", "restarted", 2, 0.12)
        harness.wait_filed(2)
        calls = calls_for(harness.emulator, [first, second])
        assert [method for method, _, _ in calls] == ["POST", "PUT"]
        assert calls[0][2] == calls[1][2]

    def test_a_held_part_survives_a_restart(self, harness: DaemonHarness) -> None:
        harness.start()
        second = drop_part(harness, "h-2.wav", "held", 2, 0.12)
        wait_until(lambda: harness.event_count("part_held") == 1, 10, "part 2 to be held")
        assert harness.stop() == 0
        harness.start()
        first = drop_part(harness, "h-1.wav", "held", 1, 0.11)
        harness.wait_filed(2)
        assert shas_in_order(harness.emulator, [first, second]) == [first, second]


class TestExistingConversations:
    """A sidecar's conversationId and a filename pattern both lead to appends."""

    def test_a_part_appended_by_conversation_id(self, harness: DaemonHarness) -> None:
        harness.start()
        (harness.inbox / "yesterday.wav").write_bytes(make_wav(0.2))
        harness.wait_filed(1)
        existing = harness.results()["yesterday.wav"]["conversationId"]
        (harness.inbox / "follow-up.wav.yaml").write_text(f"conversationId: '{existing}'\n")
        (harness.inbox / "follow-up.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(2)
        last = harness.emulator.state.submissions[-1]
        assert (last.method, last.path) == ("PUT", f"/v1/process/audio/{existing}")
        assert harness.results()["follow-up.wav"]["conversationId"] == existing

    def test_an_unknown_conversation_id_fails_with_its_reason(self, harness: DaemonHarness) -> None:
        harness.start()
        (harness.inbox / "orphan.wav.yaml").write_text("conversationId: '1234567890'\n")
        (harness.inbox / "orphan.wav").write_bytes(make_wav(0.2))
        harness.wait_filed(1)
        error = harness.errors()["orphan.wav"]
        assert error["reason"] == "unknown_conversation"
        assert error["httpStatus"] == 404
        assert error["httpBody"]["message"]

    def test_the_filename_pattern_makes_parts(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        profile = {"params": {"languageCode": "en-US"}, "continuation_pattern": PATTERN}
        harness = harness_factory(profile=profile)
        harness.start()
        second = make_wav(0.12)
        (harness.inbox / "rec-42-part2.wav").write_bytes(second)
        wait_until(lambda: harness.event_count("part_held") == 1, 10, "part 2 to be held")
        first = make_wav(0.11)
        (harness.inbox / "rec-42-part1.wav").write_bytes(first)
        harness.wait_filed(2)
        shas = [sha256_of(first), sha256_of(second)]
        assert [m for m, _, _ in calls_for(harness.emulator, shas)] == ["POST", "PUT"]
        assert harness.results()["rec-42-part2.wav"]["conversation"]["key"] == "rec-42"


class TestUrlDrops:
    """URL drops use both URL endpoints and are filed like audio."""

    def test_a_url_drop_and_its_continuation(self, harness: DaemonHarness) -> None:
        harness.start()
        base = "http://127.0.0.1:9/recordings"
        (harness.inbox / "town-hall.url.yaml").write_text(
            f"url: {base}/town-hall-1.wav\nconversation: town-hall\npart: 1\n"
            "params:\n  confidenceThreshold: 0.7\n"
        )
        (harness.inbox / "town-hall-2.url.yaml").write_text(
            f"url: {base}/town-hall-2.wav\nconversation: town-hall\npart: 2\n"
        )
        harness.wait_filed(2)
        first, second = harness.emulator.state.submissions
        assert (first.method, first.path, first.kind) == ("POST", "/v1/process/audio/url", "url")
        assert first.url == f"{base}/town-hall-1.wav"
        assert first.params["confidenceThreshold"] == 0.7
        assert (second.method, second.path) == (
            "PUT",
            f"/v1/process/audio/url/{first.conversation_id}",
        )
        result = harness.results()["town-hall-2.url.yaml"]
        assert result["url"] == f"{base}/town-hall-2.wav"
        assert result["conversation"]["conversationId"] == first.conversation_id
        assert (harness.done / "town-hall.url.yaml").exists()


class TestBrokenConversations:
    """A missing part times out; a rejected first part takes its followers down with a reason."""

    def test_a_missing_part_times_out(self, harness_factory: Callable[..., DaemonHarness]) -> None:
        profile = {"params": {}, "continuation_wait_seconds": 1}
        harness = harness_factory(profile=profile)
        harness.start()
        drop_part(harness, "lonely-2.wav", "gappy", 2, 0.12)
        harness.wait_filed(1, timeout=15)
        error = harness.errors()["lonely-2.wav"]
        assert error["reason"] == "missing_part"
        assert "part 1 of conversation 'gappy' did not arrive within 1" in error["message"]

    def test_a_rejected_first_part_fails_its_followers(self, harness: DaemonHarness) -> None:
        harness.start()
        drop_part(harness, "f-2.wav", "doomed", 2, 0.12)
        wait_until(lambda: harness.event_count("part_held") == 1, 10, "part 2 to be held")
        (harness.inbox / "f-1.wav.yaml").write_text("conversation: doomed\npart: 1\n")
        (harness.inbox / "f-1.wav").write_bytes(b"not audio")
        harness.wait_filed(2)
        errors = harness.errors()
        assert errors["f-1.wav"]["reason"] == "not_audio"
        assert errors["f-2.wav"]["reason"] == "predecessor_rejected"
        assert harness.emulator.state.submissions == []

    def test_a_failed_job_does_not_stop_the_next_part(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        server = emulator_factory(job_failure_rate=1.0)
        harness = harness_factory(emulator=server)
        harness.start()
        drop_part(harness, "j-1.wav", "shaky", 1, 0.11)
        harness.wait_filed(1)
        assert harness.errors()["j-1.wav"]["reason"] == "job_failed"
        server.state.update_settings(job_failure_rate=0.0)
        drop_part(harness, "j-2.wav", "shaky", 2, 0.12)
        harness.wait_filed(2)
        result = harness.results()["j-2.wav"]
        assert result["predecessor_job_failed"] is True
        assert result["conversationId"] == harness.errors()["j-1.wav"]["conversationId"]

    def test_the_emulator_messages_name_each_part(self, harness: DaemonHarness) -> None:
        harness.start()
        drop_part(harness, "m-1.wav", "named", 1, 0.11)
        drop_part(harness, "m-2.wav", "named", 2, 0.12)
        harness.wait_filed(2)
        conversation_id = harness.results()["m-1.wav"]["conversationId"]
        token = httpx.post(
            f"{harness.emulator.base_url}/oauth2/token:generate",
            json={"type": "application", "appId": "a", "appSecret": "b"},
        ).json()["accessToken"]
        messages = httpx.get(
            f"{harness.emulator.base_url}/v1/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {token}"},
        ).json()["messages"]
        assert len(messages) == 2
        assert "m-1.wav" in messages[0]["text"]


class TestKeysScopedToTheirFolder:
    """In a recursive inbox, two teams' ``standup`` in their own folders are two conversations."""

    def test_same_key_in_two_folders(self, harness_factory: Callable[..., DaemonHarness]) -> None:
        harness = harness_factory(inbox_options={"recursive": True})
        harness.start()
        shas = {}
        for team in ("team-a", "team-b"):
            (harness.inbox / team).mkdir()
            for part in (1, 2):
                name = f"{team}/standup-{part}.wav"
                shas[name] = drop_part(harness, name, "standup", part, 0.1 * part + len(team) / 100)
            harness.wait_filed(len(shas))
        results = harness.results()
        ids = {}
        for team in ("team-a", "team-b"):
            first = results[f"{team}/standup-1.wav"]["conversation"]
            second = results[f"{team}/standup-2.wav"]["conversation"]
            assert first["key"] == second["key"] == f"{team}/standup"
            assert first["conversationId"] == second["conversationId"]
            ids[team] = first["conversationId"]
        assert ids["team-a"] != ids["team-b"]
        methods = [record.method for record in harness.emulator.state.submissions]
        assert sorted(methods) == ["POST", "POST", "PUT", "PUT"]

    def test_a_conversation_begun_under_the_bare_key_goes_on(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        """A journal from before keys were scoped: its sub-folder conversation continues."""
        harness = harness_factory(inbox_options={"recursive": True})
        harness.start()
        (harness.inbox / "team-a").mkdir()
        drop_part(harness, "team-a/standup-1.wav", "standup", 1, 0.11)
        harness.wait_filed(1)
        harness.stop()
        # What an older version wrote: the bare key for the sub-folder's part 1.
        with sqlite3.connect(harness.state_dir / JOURNAL_NAME) as db:
            db.execute("UPDATE files SET conversation_key = 'standup'")
            db.execute("UPDATE conversations SET key = 'standup'")
        first_id = harness.results()["team-a/standup-1.wav"]["conversation"]["conversationId"]
        harness.start()
        drop_part(harness, "team-a/standup-2.wav", "standup", 2, 0.21)
        (harness.inbox / "team-b").mkdir()
        drop_part(harness, "team-b/standup-1.wav", "standup", 1, 0.31)
        harness.wait_filed(3)
        results = harness.results()
        assert results["team-a/standup-2.wav"]["conversation"] == {
            "key": "standup",
            "part": 2,
            "conversationId": first_id,
        }
        team_b = results["team-b/standup-1.wav"]["conversation"]
        assert team_b["key"] == "team-b/standup" and team_b["conversationId"] != first_id
