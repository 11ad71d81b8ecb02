-- memory: each user's memories, their earlier versions, their tags, the vector spaces (one dimension per
-- user and namespace) and the full-text index.
CREATE TABLE memories (
  id              uuid PRIMARY KEY,
  user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  namespace       text NOT NULL,
  content         text NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}',
  tags            jsonb NOT NULL DEFAULT '[]',
  embedding       bytea,
  embedding_dims  integer,
  vector_seq      bigint NOT NULL DEFAULT 0,
  version         bigint NOT NULL DEFAULT 1,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  expires_at      timestamptz,
  fts             tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX memories_user ON memories(user_id, id);
CREATE INDEX memories_user_namespace ON memories(user_id, namespace, id);
CREATE INDEX memories_vectors ON memories(user_id, namespace, vector_seq) WHERE vector_seq > 0;
CREATE INDEX memories_expires ON memories(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX memories_fts ON memories USING gin(fts);

CREATE TABLE memory_tags (
  memory_id  uuid NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  user_id    uuid NOT NULL,
  tag        text NOT NULL,
  PRIMARY KEY (memory_id, tag)
);
CREATE INDEX memory_tags_user_tag ON memory_tags(user_id, tag, memory_id);

CREATE TABLE memory_versions (
  memory_id       uuid NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  version         bigint NOT NULL,
  namespace       text NOT NULL,
  content         text NOT NULL,
  metadata        jsonb NOT NULL,
  tags            jsonb NOT NULL,
  embedding_dims  integer,
  expires_at      timestamptz,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (memory_id, version)
);

-- vector_seq counts the space's embedding writes; a process's in-memory index catches up by reading the rows
-- whose vector_seq is past the one it has applied. Writes lock the row, so a space's sequence commits in order.
CREATE TABLE memory_spaces (
  user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  namespace   text NOT NULL,
  dims        integer NOT NULL,
  vector_seq  bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (user_id, namespace)
);
