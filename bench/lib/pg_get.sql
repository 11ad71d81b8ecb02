-- pgbench -M prepared: GET /v1/memories/{id}'s query (src/keel/memory/routes.cpp) on PostgreSQL without keel,
-- for a random one of the ids in bench.ids (the same ones keel is asked for; finding it costs raw one more
-- primary-key probe, of that small table). Variables: uid, nids, now (an RFC 3339 time, as keel sends).
\set k random(1, :nids)
SELECT m.id, m.namespace, m.content, m.metadata, m.tags, m.embedding_dims, m.version, m.created_at, m.updated_at, m.expires_at FROM memories m WHERE m.id = (SELECT b.id FROM bench.ids b WHERE b.k = :k) AND m.user_id = :uid AND (m.expires_at IS NULL OR m.expires_at > :now);
