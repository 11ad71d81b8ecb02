-- pgbench -M prepared: POST /v1/memories's transaction on PostgreSQL without keel: the rows of
-- src/keel/memory/store.cpp's insert_memory and src/keel/module/outbox.cpp's append, in one round trip per
-- statement: the memory (RETURNING the columns keel returns), its tags (one INSERT of one or two rows), the
-- keel.memory.created event, whose data is the memory as GET returns it (its seq is what the schema gives a row inserted without one: NULL since
-- migration 0007, for the running keel's sequencer to number, as it numbers keel's own). With -D lock=1 it
-- also takes, before the event, the outbox lock keel took before 0007 (pg_advisory_xact_lock(7336002), held
-- to COMMIT). Variables: uid (the user), nrows (rows of bench.rows), tp (a traceparent), lock.
-- Differences from keel: the content comes from bench.rows by primary key (keel's arrives as parameters); ids
-- and times are made by the server (keel sends them as text).
\set k random(1, :nrows)
BEGIN;
INSERT INTO memories (id, user_id, namespace, content, metadata, tags, embedding, embedding_dims, vector_seq, version, created_at, updated_at, expires_at) SELECT bench.uuid7(), :uid::uuid, 'default', r.content, r.metadata::jsonb, r.tags::jsonb, NULL, NULL, 0, 1, now(), now(), NULL FROM bench.rows r WHERE r.k = :k RETURNING id, namespace, content, metadata, tags, embedding_dims, version, created_at, updated_at, expires_at, jsonb_array_length(tags) AS ntags, tags->>0 AS tag1, tags->>1 AS tag2 \gset
\if :ntags > 1
INSERT INTO memory_tags (memory_id, user_id, tag) VALUES (:id, :uid, :tag1), (:id, :uid, :tag2);
\else
INSERT INTO memory_tags (memory_id, user_id, tag) VALUES (:id, :uid, :tag1);
\endif
\if :lock
SELECT pg_advisory_xact_lock(7336002);
\endif
INSERT INTO observability_events (id, type, source, subject, time, data, traceparent, created_at, updated_at) VALUES (bench.uuid7(), 'keel.memory.created', '/keel/memory', :uid, now(), jsonb_build_object('id', :'id', 'namespace', 'default', 'content', :'content', 'metadata', :'metadata'::jsonb, 'tags', :'tags'::jsonb, 'embedding_dims', NULL, 'version', 1, 'created_at', :'created_at', 'updated_at', :'updated_at', 'expires_at', NULL), :tp, now(), now());
COMMIT;
