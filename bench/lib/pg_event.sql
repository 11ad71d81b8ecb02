-- pgbench -M prepared: POST /v1/events's row on PostgreSQL without keel (src/keel/module/outbox.cpp's append
-- of post_event.lua's body), one INSERT in its own transaction (its seq: see pg_insert.sql). With -D lock=1,
-- the transaction keel ran before migration 0007: BEGIN, the outbox lock (pg_advisory_xact_lock(7336002)),
-- the INSERT, COMMIT. Variables: tp (a traceparent), lock.
\set n random(1, 1000000)
\if :lock
BEGIN;
SELECT pg_advisory_xact_lock(7336002);
\endif
INSERT INTO observability_events (id, type, source, subject, time, data, traceparent, created_at, updated_at) VALUES (bench.uuid7(), 'bench.ingest', '/bench', NULL, now(), ('{"n":' || :n::text || '}')::jsonb, :tp, now(), now());
\if :lock
COMMIT;
\endif
