"""Conversation keys are scoped to the file's folder; top-level files keep the bare key."""

from __future__ import annotations

from daemon.convkeys import folder_of, scoped_key


class TestScopedKey:
    """Two sub-folders' ``standup`` are two conversations; a conversationId is global."""

    def test_top_level_keeps_the_key(self) -> None:
        assert scoped_key("standup-1.wav", "standup") == "standup"

    def test_sub_folders_do_not_collide(self) -> None:
        assert scoped_key("team-a/s.wav", "standup") == "team-a/standup"
        assert scoped_key("team-b/x/s.wav", "standup") == "team-b/x/standup"

    def test_conversation_ids_are_not_scoped(self) -> None:
        assert scoped_key("team-a/s.wav", "conversationId:42") == "conversationId:42"

    def test_folder_of(self) -> None:
        assert folder_of("a/b/c.wav") == "a/b" and folder_of("c.wav") == ""
