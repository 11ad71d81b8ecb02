-- pgbench -M prepared: POST /v1/memories/search's full-text query on PostgreSQL (text_search in
-- src/keel/memory/routes.cpp: ts_rank over websearch_to_tsquery, limit 10) without keel, for a random one of
-- bench.queries (the text keel builds from memory_search.lua's words). Variables: uid, nq, now.
\set k random(1, :nq)
SELECT m.id, m.namespace, m.content, m.metadata, m.tags, m.embedding_dims, m.version, m.created_at, m.updated_at, m.expires_at, ts_rank(m.fts, q.q) FROM memories m, websearch_to_tsquery('english', (SELECT b.q FROM bench.queries b WHERE b.k = :k)) AS q(q) WHERE m.user_id = :uid AND m.fts @@ q.q AND (m.expires_at IS NULL OR m.expires_at > :now) ORDER BY 11 DESC, m.id DESC LIMIT 10;
