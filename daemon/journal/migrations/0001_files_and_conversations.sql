-- The journal's records in PostgreSQL, shared by every host of a cluster: the same rows as the
-- SQLite journal, keyed by the inbox's configured id (the same share is mounted at different
-- paths on different hosts). Names (paths, conversation keys) are kept as the file system's
-- bytes, so a name that is not UTF-8 survives and is found again.

CREATE TABLE files (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbox text NOT NULL,
    rel_path bytea NOT NULL,
    kind text NOT NULL,
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    state text NOT NULL,
    profile text,
    sha256 text,
    conversation_key bytea,
    part integer,
    conversation_id text,
    job_id text,
    outcome text,
    reason text,
    filed_path bytea,
    data json NOT NULL DEFAULT '{}',
    -- The host that holds the file now (cluster.host_id); empty until a host claims it.
    host_id text,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX files_state ON files (state);
CREATE INDEX files_path ON files (inbox, rel_path);
CREATE INDEX files_sha ON files (inbox, sha256);
CREATE INDEX files_parts ON files (inbox, conversation_key);
-- The status page and /metrics read these often: latest failures, and counts from the index.
CREATE INDEX files_failures ON files (outcome, updated_at);
CREATE INDEX files_counts ON files (inbox, state, outcome);
CREATE INDEX files_host ON files (host_id) WHERE host_id IS NOT NULL;

CREATE TABLE conversations (
    inbox text NOT NULL,
    key bytea NOT NULL,
    conversation_id text,
    last_part_done integer NOT NULL DEFAULT 0,
    last_part_assigned integer NOT NULL DEFAULT 0,
    rejected boolean NOT NULL DEFAULT false,
    data json NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (inbox, key)
);

-- Small values the daemon learns and keeps across restarts (e.g. the processing speed).
CREATE TABLE settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
