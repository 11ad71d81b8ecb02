-- The seed's tables: users, sessions, modules and their instances, billing accounts, observability events.
-- Keys are UUIDv7 text, times RFC 3339 UTC text, metadata JSON text (checked with json_valid).

CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL,
  email_lower   TEXT NOT NULL UNIQUE,
  display_name  TEXT,
  password_hash TEXT NOT NULL,
  roles         TEXT NOT NULL DEFAULT '["user"]' CHECK (json_valid(roles)),
  status        TEXT NOT NULL DEFAULT 'active',
  metadata      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);

CREATE TABLE sessions (
  id                 TEXT PRIMARY KEY,
  user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  user_agent         TEXT,
  ip                 TEXT,
  metadata           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  created_at         TEXT NOT NULL,
  updated_at         TEXT NOT NULL,
  last_used_at       TEXT NOT NULL,
  expires_at         TEXT NOT NULL,
  revoked_at         TEXT,
  revoked_reason     TEXT
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);

CREATE TABLE modules (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  routes      TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(routes)),
  metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE module_instances (
  id            TEXT PRIMARY KEY,
  module_id     TEXT NOT NULL REFERENCES modules(id) ON DELETE CASCADE,
  instance_id   TEXT NOT NULL,
  url           TEXT NOT NULL,
  version       TEXT,
  health_path   TEXT,
  tags          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
  metadata      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  status        TEXT NOT NULL DEFAULT 'passing',
  ttl_seconds   INTEGER NOT NULL DEFAULT 30,
  registered_at TEXT NOT NULL,
  last_seen_at  TEXT NOT NULL,
  expires_at    TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  UNIQUE (module_id, instance_id)
);
CREATE INDEX module_instances_expires_at ON module_instances(expires_at);

CREATE TABLE billing_accounts (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
  plan        TEXT NOT NULL DEFAULT 'free',
  status      TEXT NOT NULL DEFAULT 'active',
  balance     INTEGER NOT NULL DEFAULT 0,
  currency    TEXT NOT NULL DEFAULT 'credits',
  metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE observability_events (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT NOT NULL UNIQUE,
  type            TEXT NOT NULL,
  source          TEXT NOT NULL,
  subject         TEXT,
  time            TEXT NOT NULL,
  data            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
  traceparent     TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);
CREATE INDEX observability_events_type ON observability_events(type, seq);
CREATE INDEX observability_events_subject ON observability_events(subject, seq);
CREATE INDEX observability_events_time ON observability_events(time);
