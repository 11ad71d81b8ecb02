-- memory: each user's memories, their earlier versions, their tags, the vector spaces (one dimension per
-- user and namespace) and the full-text index.
CREATE TABLE memories (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  namespace       TEXT NOT NULL,
  content         TEXT NOT NULL,
  metadata        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  tags            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
  embedding       BLOB,
  embedding_dims  INTEGER,
  vector_seq      INTEGER NOT NULL DEFAULT 0,
  version         INTEGER NOT NULL DEFAULT 1,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  expires_at      TEXT
);
CREATE INDEX memories_user ON memories(user_id, id);
CREATE INDEX memories_user_namespace ON memories(user_id, namespace, id);
CREATE INDEX memories_vectors ON memories(user_id, namespace, vector_seq) WHERE vector_seq > 0;
CREATE INDEX memories_expires ON memories(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE memory_tags (
  memory_id  TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL,
  tag        TEXT NOT NULL,
  PRIMARY KEY (memory_id, tag)
) WITHOUT ROWID;
CREATE INDEX memory_tags_user_tag ON memory_tags(user_id, tag, memory_id);

CREATE TABLE memory_versions (
  memory_id       TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  version         INTEGER NOT NULL,
  namespace       TEXT NOT NULL,
  content         TEXT NOT NULL,
  metadata        TEXT NOT NULL CHECK (json_valid(metadata)),
  tags            TEXT NOT NULL CHECK (json_valid(tags)),
  embedding_dims  INTEGER,
  expires_at      TEXT,
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (memory_id, version)
) WITHOUT ROWID;

-- vector_seq counts the space's embedding writes; a process's in-memory index catches up by reading the rows
-- whose vector_seq is past the one it has applied. Writes lock the row, so a space's sequence commits in order.
CREATE TABLE memory_spaces (
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  namespace   TEXT NOT NULL,
  dims        INTEGER NOT NULL,
  vector_seq  INTEGER NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (user_id, namespace)
);

-- Full text, BM25. Contentless: the text lives in memories. `scope` holds one token for the user and one for
-- the user's namespace (hex, ending in a digit so the stemmer leaves them alone), so a search intersects the
-- posting lists of one user's memories instead of filtering everyone's matches.
CREATE VIRTUAL TABLE memories_fts USING fts5(
  content, scope, content = '', tokenize = 'porter unicode61 remove_diacritics 2');

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts(rowid, content, scope) VALUES (
    new.rowid, new.content,
    'u' || replace(new.user_id, '-', '') || '0 n' || replace(new.user_id, '-', '') || hex(new.namespace) || '0');
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content, scope) VALUES (
    'delete', old.rowid, old.content,
    'u' || replace(old.user_id, '-', '') || '0 n' || replace(old.user_id, '-', '') || hex(old.namespace) || '0');
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF content, namespace ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content, scope) VALUES (
    'delete', old.rowid, old.content,
    'u' || replace(old.user_id, '-', '') || '0 n' || replace(old.user_id, '-', '') || hex(old.namespace) || '0');
  INSERT INTO memories_fts(rowid, content, scope) VALUES (
    new.rowid, new.content,
    'u' || replace(new.user_id, '-', '') || '0 n' || replace(new.user_id, '-', '') || hex(new.namespace) || '0');
END;
