-- Counts for /metrics and `status` that cost the same at any size of history, and what
-- retention (journal.keep_filed_days) reads.
--
-- Every change of a file's inbox, state or outcome appends its -1 and +1 to
-- file_count_changes, in the statement that makes it: appending takes no lock another host
-- could wait for (one row of counts per state, updated by every host at every change, would be
-- the hottest rows of the database, and transactions updating them in different orders could
-- deadlock). A reader sums file_counts and the changes; folding the changes into file_counts
-- (journal: compact_counts) keeps them few. Deleting a filed row (retention) does not lower the
-- count: filed counts are every file filed since the journal began.

-- host: the host holding the files (files.host_id), '' for none.
CREATE TABLE file_counts (
    inbox text NOT NULL,
    state text NOT NULL,
    host text NOT NULL,
    files bigint NOT NULL,
    PRIMARY KEY (inbox, state, host)
);

CREATE TABLE file_count_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbox text NOT NULL,
    state text NOT NULL,
    host text NOT NULL,
    delta integer NOT NULL
);

CREATE FUNCTION file_count_key(state text, outcome text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN state = 'filed' THEN 'filed_' || coalesce(outcome, '') ELSE state END
$$;

INSERT INTO file_counts (inbox, state, host, files)
    SELECT inbox, file_count_key(state, outcome), coalesce(host_id, ''), count(*)
    FROM files GROUP BY 1, 2, 3;

CREATE FUNCTION file_counted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO file_count_changes (inbox, state, host, delta)
            SELECT inbox, file_count_key(state, outcome), coalesce(host_id, ''), count(*)::integer
            FROM new_rows GROUP BY 1, 2, 3;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO file_count_changes (inbox, state, host, delta)
            SELECT o.inbox, file_count_key(o.state, o.outcome), coalesce(o.host_id, ''), -1
            FROM old_rows AS o JOIN new_rows AS n USING (id)
            WHERE (o.inbox, o.state, o.outcome, o.host_id)
                IS DISTINCT FROM (n.inbox, n.state, n.outcome, n.host_id)
            UNION ALL
            SELECT n.inbox, file_count_key(n.state, n.outcome), coalesce(n.host_id, ''), 1
            FROM old_rows AS o JOIN new_rows AS n USING (id)
            WHERE (o.inbox, o.state, o.outcome, o.host_id)
                IS DISTINCT FROM (n.inbox, n.state, n.outcome, n.host_id);
    ELSE
        INSERT INTO file_count_changes (inbox, state, host, delta)
            SELECT inbox, file_count_key(state, outcome), coalesce(host_id, ''), -count(*)::integer
            FROM old_rows WHERE state <> 'filed' GROUP BY 1, 2, 3;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER files_counted_on_insert AFTER INSERT ON files
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION file_counted();
CREATE TRIGGER files_counted_on_update AFTER UPDATE ON files
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION file_counted();
CREATE TRIGGER files_counted_on_delete AFTER DELETE ON files
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION file_counted();

-- The counts are read from the tables above now; this index only slowed every write.
DROP INDEX files_counts;
-- Files not yet filed, found without reading the history (a start, `status`).
CREATE INDEX files_active ON files (inbox, id) WHERE state <> 'filed';
-- Retention: filed rows, oldest written first.
CREATE INDEX files_filed_at ON files (updated_at, id) WHERE state = 'filed';
