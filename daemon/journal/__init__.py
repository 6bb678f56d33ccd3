"""The journal: the Journal protocol (``base``), kept in SQLite (``sqlite``) or in memory.

Importers name the protocol for what they need of a journal and ``SqliteJournal`` where they
open the one in ``state_dir``.
"""

from daemon.journal.base import Journal
from daemon.journal.memory import MemoryJournal
from daemon.journal.sqlite import JOURNAL_NAME, JournalDamaged, SqliteJournal
from daemon.model import (
    ACTIVE_STATES,
    FINAL_STATES,
    ActiveFile,
    ConversationRecord,
    FileRecord,
    Kind,
    PruneCursor,
    State,
)

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "JOURNAL_NAME",
    "ActiveFile",
    "ConversationRecord",
    "FileRecord",
    "Journal",
    "JournalDamaged",
    "Kind",
    "MemoryJournal",
    "PruneCursor",
    "SqliteJournal",
    "State",
]
