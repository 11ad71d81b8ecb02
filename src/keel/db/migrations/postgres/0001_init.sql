-- The seed's tables: users, sessions, modules and their instances, billing accounts, observability events.

CREATE TABLE users (
  id            uuid PRIMARY KEY,
  email         text NOT NULL,
  email_lower   text NOT NULL UNIQUE,
  display_name  text,
  password_hash text NOT NULL,
  roles         jsonb NOT NULL DEFAULT '["user"]',
  status        text NOT NULL DEFAULT 'active',
  metadata      jsonb NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
  id                 uuid PRIMARY KEY,
  user_id            uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  user_agent         text,
  ip                 text,
  metadata           jsonb NOT NULL DEFAULT '{}',
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL,
  last_used_at       timestamptz NOT NULL,
  expires_at         timestamptz NOT NULL,
  revoked_at         timestamptz,
  revoked_reason     text
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);

CREATE TABLE modules (
  id          uuid PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  routes      jsonb NOT NULL DEFAULT '[]',
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);

CREATE TABLE module_instances (
  id            uuid PRIMARY KEY,
  module_id     uuid NOT NULL REFERENCES modules(id) ON DELETE CASCADE,
  instance_id   text NOT NULL,
  url           text NOT NULL,
  version       text,
  health_path   text,
  tags          jsonb NOT NULL DEFAULT '[]',
  metadata      jsonb NOT NULL DEFAULT '{}',
  status        text NOT NULL DEFAULT 'passing',
  ttl_seconds   integer NOT NULL DEFAULT 30,
  registered_at timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  UNIQUE (module_id, instance_id)
);
CREATE INDEX module_instances_expires_at ON module_instances(expires_at);

CREATE TABLE billing_accounts (
  id          uuid PRIMARY KEY,
  user_id     uuid NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
  plan        text NOT NULL DEFAULT 'free',
  status      text NOT NULL DEFAULT 'active',
  balance     bigint NOT NULL DEFAULT 0,
  currency    text NOT NULL DEFAULT 'credits',
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);

CREATE TABLE observability_events (
  id              uuid PRIMARY KEY,
  seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  type            text NOT NULL,
  source          text NOT NULL,
  subject         text,
  time            timestamptz NOT NULL,
  data            jsonb NOT NULL DEFAULT '{}',
  traceparent     text,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL
);
CREATE INDEX observability_events_type ON observability_events(type, seq);
CREATE INDEX observability_events_subject ON observability_events(subject, seq);
CREATE INDEX observability_events_time ON observability_events(time);
