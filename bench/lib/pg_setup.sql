-- bench/postgres.sh: the raw side's helpers, in a schema of their own beside keel's tables (run once per
-- database, before keel migrates it).
CREATE SCHEMA bench;
-- A UUID version 7 like keel's ids (48 bits of Unix milliseconds, then random bits), so raw inserts land in
-- the primary keys' B-trees in time order as keel's do.
CREATE FUNCTION bench.uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
    substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
$$;
-- Memories as keel stores memory_insert.lua's bodies (bench/lib/pg_data.py rows); metadata and tags are JSON
-- text, parsed on insert as keel's text parameters are.
CREATE TABLE bench.rows (k int PRIMARY KEY, content text NOT NULL, metadata text NOT NULL, tags text NOT NULL);
-- The ids GET /v1/memories/{id} asks for, numbered for pgbench.
CREATE TABLE bench.ids (k int PRIMARY KEY, id uuid NOT NULL);
-- Full-text queries (bench/lib/pg_data.py queries).
CREATE TABLE bench.queries (k int PRIMARY KEY, q text NOT NULL);
