"""The SQL of the journal's upkeep in SQLite: counts kept beside the rows, and retention.

``SqliteJournal`` runs these; they live apart so that the store's own module stays about
files and conversations.
"""

from __future__ import annotations

from daemon.journal.keeping import prune_delete

# What ``counts`` reads: files by inbox and state (``filed_<outcome>`` once filed), kept with
# every change of state in the same transaction, so that a scrape never counts the rows. New
# rows are counted by the code that inserts them, a batch at a time (a trigger per row doubled
# the cost of journaling a backlog); changes and deletions by these triggers. Pruning filed
# rows does not lower their count: the filed counts are every file filed since the journal
# began.
COUNT_KEY = (
    "CASE WHEN {0}.state = 'filed' THEN 'filed_' || coalesce({0}.outcome, '') ELSE {0}.state END"
)
COUNTS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS file_counts (
    inbox TEXT NOT NULL,
    state TEXT NOT NULL,
    files INTEGER NOT NULL,
    PRIMARY KEY (inbox, state)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS files_counted_on_update AFTER UPDATE OF inbox, state, outcome ON files
WHEN OLD.inbox IS NOT NEW.inbox OR OLD.state IS NOT NEW.state OR OLD.outcome IS NOT NEW.outcome
BEGIN
    UPDATE file_counts SET files = files - 1
        WHERE inbox = OLD.inbox AND state = {COUNT_KEY.format("OLD")};
    INSERT INTO file_counts (inbox, state, files) VALUES (NEW.inbox, {COUNT_KEY.format("NEW")}, 1)
        ON CONFLICT (inbox, state) DO UPDATE SET files = files + 1;
END;
CREATE TRIGGER IF NOT EXISTS files_counted_on_delete AFTER DELETE ON files
WHEN OLD.state != 'filed'
BEGIN
    UPDATE file_counts SET files = files - 1
        WHERE inbox = OLD.inbox AND state = {COUNT_KEY.format("OLD")};
END;
"""
COUNT_ROWS = f"SELECT inbox, {COUNT_KEY.format('files')}, COUNT(*) FROM files GROUP BY 1, 2"
# A journal from before the counts were kept is counted once, when first opened to write.
COUNT_EVERY_ROW = f"INSERT INTO file_counts (inbox, state, files) {COUNT_ROWS};"
COUNT_NEW = (
    "INSERT INTO file_counts (inbox, state, files) VALUES (?, ?, ?)"
    " ON CONFLICT (inbox, state) DO UPDATE SET files = files + excluded.files"
)
INSERT_FILE = (
    "INSERT INTO files (id, inbox, rel_path, kind, size, mtime_ns, state, data, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Retention, oldest filed rows first from a cursor; then those of them nothing needs. What stays
# is what ``Journal.prune_filed`` promises: a conversation's latest filed part, and the first
# done file of each content in the inboxes named (a JSON list).
PRUNE_EXAMINE = (
    "SELECT id, updated_at FROM files INDEXED BY files_filed_at"
    " WHERE state = 'filed' AND updated_at < ? AND (updated_at, id) > (?, ?)"
    " ORDER BY updated_at, id LIMIT ?"
)
PRUNE_DELETE = prune_delete("IN (SELECT value FROM json_each(?))")
