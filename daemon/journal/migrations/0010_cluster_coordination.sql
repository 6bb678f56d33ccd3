-- Coordination of the hosts that share this journal (daemon/cluster/postgres.py).
-- A host's lease: renewed by its heartbeat; a host whose lease ran out is dead to the others,
-- who adopt its files and slots. The counters say what takeovers cost, for `status`.
CREATE TABLE cluster_hosts (
    host_id text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until timestamptz NOT NULL,
    adopted bigint NOT NULL DEFAULT 0,
    reuploads_after_takeover bigint NOT NULL DEFAULT 0
);

-- One owner per file of a shared inbox: the first host to claim (inbox id, path) has it until
-- the file is filed or vanishes; file_id is the journal record it got.
CREATE TABLE cluster_claims (
    inbox text NOT NULL,
    rel_path bytea NOT NULL,
    owner text NOT NULL,
    file_id bigint UNIQUE,
    claimed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (inbox, rel_path)
);
CREATE INDEX cluster_claims_owner ON cluster_claims (owner);

-- The account's concurrent-job limit as rows: a slot is free (owner NULL) or held for one
-- file, from its upload until its job ends. The cap learned from 429s and the pause they
-- start belong to the account, shared by every host.
CREATE TABLE cluster_accounts (
    account text PRIMARY KEY,
    job_cap integer NOT NULL,
    pause_until timestamptz NOT NULL DEFAULT '-infinity',
    last_rate_limit timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE TABLE cluster_slots (
    account text NOT NULL REFERENCES cluster_accounts (account),
    slot integer NOT NULL,
    owner text,
    file_id bigint,
    taken_at timestamptz,
    PRIMARY KEY (account, slot),
    UNIQUE (account, file_id)
);
CREATE INDEX cluster_slots_owner ON cluster_slots (owner) WHERE owner IS NOT NULL;
