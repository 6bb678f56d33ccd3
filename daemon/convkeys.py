"""Conversation keys are scoped to the folder the file is in (recursive inboxes).

Two teams that both name a conversation ``standup`` in their own sub-folders of one recursive
inbox have two conversations: the key a sidecar (or a filename pattern) gives is prefixed with
the file's folder relative to the inbox, ``team-a/standup`` and ``team-b/standup``. Files at the
top of an inbox keep the bare key, so conversations begun before this rule go on as they were.
A ``conversationId`` names one Symbl conversation wherever the file is, so it is never scoped.
"""

from __future__ import annotations

import posixpath

CONVERSATION_ID_PREFIX = "conversationId:"


def folder_of(rel_path: str) -> str:
    """The folder of a file relative to its inbox (``""`` at the top)."""
    return posixpath.dirname(rel_path)


def scoped_key(rel_path: str, key: str) -> str:
    """``key`` as the journal keeps it for the file at ``rel_path``."""
    if key.startswith(CONVERSATION_ID_PREFIX):
        return key
    folder = folder_of(rel_path)
    return f"{folder}/{key}" if folder else key
