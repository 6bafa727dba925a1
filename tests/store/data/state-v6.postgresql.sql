-- licsync state, schema version 6 (frozen: do not edit or regenerate)
CREATE TABLE licsync_schema (version integer NOT NULL);
CREATE TABLE runs (
        run_id text PRIMARY KEY,
        kind text NOT NULL,
        status text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        summary jsonb
    );
CREATE TABLE ownership (
        user_id text NOT NULL,
        sku_id text NOT NULL,
        groups text[] NOT NULL,
        prior_direct text[],
        PRIMARY KEY (user_id, sku_id)
    );
CREATE TABLE changes (
        change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs (run_id),
        user_id text NOT NULL,
        sku_id text,
        action text NOT NULL,
        disabled_plans text[] NOT NULL,
        usage_location text,
        outcome text NOT NULL,
        request_id text,
        at timestamptz NOT NULL
    );
CREATE INDEX changes_run ON changes (run_id);
CREATE INDEX changes_user ON changes (user_id, sku_id);
CREATE TABLE problems (
        problem_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id text NOT NULL,
        user_principal_name text NOT NULL,
        sku_id text NOT NULL,
        group_id text NOT NULL,
        error text NOT NULL,
        message text NOT NULL,
        first_seen timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        attempts integer NOT NULL,
        last_run_id text NOT NULL REFERENCES runs (run_id),
        resolved_at timestamptz,
        resolved_run_id text REFERENCES runs (run_id)
    );
CREATE UNIQUE INDEX problems_open ON problems (user_id, sku_id, group_id, error)
        WHERE resolved_at IS NULL;
CREATE TABLE delta_links (
        resource text PRIMARY KEY,
        link text NOT NULL,
        updated_at timestamptz NOT NULL,
        run_id text REFERENCES runs (run_id)
    );
CREATE TABLE lease (
        name text PRIMARY KEY,
        holder text NOT NULL,
        acquired_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    );
INSERT INTO licsync_schema (version) VALUES (1);
INSERT INTO runs VALUES ('run-1', 'sync', 'succeeded', '2025-01-02T03:04:05.000000+00:00', '2025-01-02T03:04:05.000000+00:00', '{"changes": 2}');
INSERT INTO runs VALUES ('run-2', 'sync', 'failed', '2025-01-03T03:04:05.000000+00:00', '2025-01-03T03:04:05.000000+00:00', NULL);
INSERT INTO ownership VALUES ('11111111-1111-1111-1111-111111111111', 'c7df2760-2c81-4ef7-b578-5b5392b571df', '{aaaaaaaa-0000-0000-0000-000000000001,aaaaaaaa-0000-0000-0000-000000000002}', NULL);
INSERT INTO ownership VALUES ('22222222-2222-2222-2222-222222222222', 'c7df2760-2c81-4ef7-b578-5b5392b571df', '{aaaaaaaa-0000-0000-0000-000000000001}', '{9aaf7827-d63c-4b61-89c3-182f06f82e5c}');
INSERT INTO changes (run_id, user_id, sku_id, action, disabled_plans, usage_location, outcome, request_id, at) VALUES ('run-1', '11111111-1111-1111-1111-111111111111', 'c7df2760-2c81-4ef7-b578-5b5392b571df', 'add', '{}', NULL, 'succeeded', 'req-1', '2025-01-02T03:04:05.000000+00:00');
INSERT INTO problems (user_id, user_principal_name, sku_id, group_id, error, message, first_seen, last_seen, attempts, last_run_id) VALUES ('22222222-2222-2222-2222-222222222222', 'b@contoso.com', 'c7df2760-2c81-4ef7-b578-5b5392b571df', 'aaaaaaaa-0000-0000-0000-000000000001', 'CountViolation', 'no seats', '2025-01-02T03:04:05.000000+00:00', '2025-01-03T03:04:05.000000+00:00', 2, 'run-2');
INSERT INTO delta_links VALUES ('users', 'https://graph.microsoft.com/v1.0/users/delta?$deltatoken=v1', '2025-01-02T03:04:05.000000+00:00', 'run-1');
ALTER TABLE delta_links ALTER COLUMN link DROP NOT NULL;
ALTER TABLE delta_links ALTER COLUMN updated_at DROP NOT NULL;
ALTER TABLE delta_links ADD COLUMN pending_link text;
ALTER TABLE delta_links ADD COLUMN pending_run_id text REFERENCES runs (run_id);
ALTER TABLE delta_links ADD COLUMN pending_at timestamptz;
UPDATE licsync_schema SET version = 2;
INSERT INTO delta_links (resource, pending_link, pending_run_id, pending_at) VALUES ('groups', 'https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=v2', 'run-2', '2025-01-03T03:04:05.000000+00:00');
CREATE TABLE tenant_cache (
        kind text NOT NULL,
        object_id text NOT NULL,
        data text NOT NULL,
        PRIMARY KEY (kind, object_id)
    );
UPDATE licsync_schema SET version = 3;
INSERT INTO tenant_cache (kind, object_id, data) VALUES ('user', '11111111-1111-1111-1111-111111111111', '{"id":"11111111-1111-1111-1111-111111111111"}');
CREATE TABLE intents (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        user_id TEXT NOT NULL,
        sku_id TEXT NOT NULL,
        expect TEXT,
        before TEXT,
        after TEXT,
        PRIMARY KEY (run_id, user_id, sku_id)
    );
UPDATE licsync_schema SET version = 4;
CREATE TABLE tenant_binding (
        name text PRIMARY KEY,
        tenant_id text NOT NULL,
        bound_at timestamptz NOT NULL,
        run_id text
    );
INSERT INTO runs VALUES ('run-3', 'migrate', 'aborted', '2025-01-04T03:04:05.000000+00:00', '2025-01-04T03:04:05.000000+00:00', NULL);
UPDATE licsync_schema SET version = 5;
UPDATE runs SET status = CASE status WHEN 'aborted' THEN 'stopped' ELSE status END;
UPDATE changes SET outcome = CASE outcome WHEN 'succeeded' THEN 'applied' WHEN 'recovered' THEN 'applied' WHEN 'pending' THEN 'pending' WHEN 'applied' THEN 'applied' WHEN 'failed' THEN 'failed' WHEN 'skipped' THEN 'skipped' WHEN 'unknown' THEN 'unknown' ELSE 'failed' END;
INSERT INTO runs VALUES ('run-4', 'sync', 'stopped', '2025-01-05T03:04:05.000000+00:00', '2025-01-05T03:04:05.000000+00:00', NULL);
UPDATE licsync_schema SET version = 6;
