-- openwop schema, part 1: tables.
-- Every key carries tenant_id so the tables can later be distributed by tenant.

-- A tenant owns workflows, runs and API keys.
CREATE TABLE openwop.tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE openwop.tenants IS 'Tenants: the isolation unit for workflows, runs and API keys.';
INSERT INTO openwop.tenants (id, name) VALUES ('default', 'Default tenant');

-- Workspaces subdivide a tenant (the protocol's `tenantId` in request bodies names one); a
-- run's owner records its workspace.
CREATE TABLE openwop.workspaces (
    tenant_id   text NOT NULL REFERENCES openwop.tenants (id),
    id          text NOT NULL CHECK (id ~ '^[A-Za-z0-9._-]{1,128}$'),
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE openwop.workspaces IS 'Workspaces of a tenant (request tenantId / owner.workspace).';

-- Database roles that act as exactly one tenant: row-level security shows such a role its
-- tenant's rows only, whatever it sets openwop.tenant to.
CREATE TABLE openwop.tenant_roles (
    role_name   name PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES openwop.tenants (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE openwop.tenant_roles IS 'Database roles bound to one tenant (see openwop.grant_tenant_role).';

-- Bearer API keys. Only a SHA-256 hash of the full token is stored; the plaintext is
-- returned once by create_api_key. Tokens are 256-bit random strings, so a fast hash is
-- the right tool (a slow password hash only helps low-entropy secrets).
CREATE TABLE openwop.api_keys (
    tenant_id   text NOT NULL REFERENCES openwop.tenants (id),
    id          uuid NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    label       text,
    scopes      text[] NOT NULL,
    -- A key bound to a workspace starts runs in that workspace only.
    workspace_id text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, workspace_id) REFERENCES openwop.workspaces (tenant_id, id)
);
COMMENT ON TABLE openwop.api_keys IS 'API keys (hashed). Create with openwop.create_api_key, revoke with openwop.revoke_api_key.';

-- Workflow definitions. Every registration that changes a definition adds a revision;
-- revisions are immutable, so a run keeps executing the definition it started with.
CREATE TABLE openwop.workflows (
    tenant_id   text NOT NULL REFERENCES openwop.tenants (id),
    id          text NOT NULL,
    revision    integer NOT NULL,
    version     text NOT NULL,
    definition  jsonb NOT NULL,
    -- What start_run needs to check inputs without re-reading the definition:
    -- {"required": [names], "types": {name: type}, "defaults": {name: value}, "timeoutMs": n,
    --  "configurableSchema": {...}}
    input_spec  jsonb NOT NULL,
    is_fixture  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id, revision)
);
COMMENT ON TABLE openwop.workflows IS 'Validated workflow definitions, one row per revision. Register with openwop.register_workflow.';

-- Runs: one row per run, the live projection of its event log. The snapshot is one row read.
CREATE TABLE openwop.runs (
    tenant_id          text NOT NULL,
    id                 uuid NOT NULL,
    workflow_id        text NOT NULL,
    workflow_revision  integer NOT NULL,
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'running', 'paused', 'waiting-approval', 'waiting-input',
                          'waiting-external', 'completed', 'failed', 'cancelling', 'cancelled')),
    -- Event-log era (eventLogSchemaVersion): 3 = events stored under v2 names.
    era                smallint NOT NULL DEFAULT 3,
    -- Next event sequence to allocate. Advanced in the same transaction as the events.
    next_seq           integer NOT NULL DEFAULT 0,
    -- When set, a worker must step this run at or after this instant. NULL = nothing to do
    -- (suspended on an external input, or terminal).
    ready_at           timestamptz,
    inputs             jsonb NOT NULL DEFAULT '{}',
    variables          jsonb NOT NULL DEFAULT '{}',
    node_states        jsonb NOT NULL DEFAULT '{}',
    node_executions    integer NOT NULL DEFAULT 0,
    current_node_id    text,
    outputs            jsonb,
    error              jsonb,
    owner              jsonb NOT NULL,
    -- Caller options echoed on the snapshot: {configurable, tags, metadata, transport, scopeId, callbackUrl}
    options            jsonb NOT NULL DEFAULT '{}',
    -- Limits resolved at create: {maxNodeExecutions, runTimeoutMs}
    limits             jsonb NOT NULL,
    -- Set by cancel_run; the worker turns it into run.cancelled.
    cancel_request     jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    completed_at       timestamptz,
    deadline_at        timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id, workflow_revision)
        REFERENCES openwop.workflows (tenant_id, id, revision)
);
COMMENT ON TABLE openwop.runs IS 'One row per run: the live projection of the run''s event log. Start runs with openwop.start_run.';
-- The workers' queue: only rows with work to do are indexed, so the index stays small.
CREATE INDEX runs_ready_idx ON openwop.runs (ready_at) WHERE ready_at IS NOT NULL;
CREATE INDEX runs_created_idx ON openwop.runs (tenant_id, created_at);

-- The append-only event log. seq is gap-free from 0 per run, allocated from runs.next_seq in
-- the transaction that changes the projection. Rows are never updated nor renumbered.
-- (No foreign key to runs: the engine is the only writer and this is the hottest insert.)
CREATE TABLE openwop.events (
    tenant_id  text NOT NULL,
    run_id     uuid NOT NULL,
    seq        integer NOT NULL CHECK (seq >= 0),
    type       text NOT NULL,
    node_id    text,
    payload    jsonb NOT NULL,
    ts         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, run_id, seq)
);
COMMENT ON TABLE openwop.events IS 'Append-only per-run event log (v2 event names). Read with openwop.events().';

-- Durable timers. Nothing ever sleeps in a transaction: a delay is a row here plus the run's
-- ready_at, which the workers' claim query watches.
CREATE TABLE openwop.timers (
    tenant_id  text NOT NULL,
    run_id     uuid NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('delay', 'deadline', 'sweep')),
    node_id    text NOT NULL DEFAULT '',
    due_at     timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id, kind, node_id)
);
COMMENT ON TABLE openwop.timers IS 'Durable timers: run delays and deadlines (a due one makes its run ready), and engine housekeeping (kind sweep).';
CREATE INDEX timers_due_idx ON openwop.timers (due_at);
