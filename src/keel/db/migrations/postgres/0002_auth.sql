-- auth: refresh tokens (hashes only), signing keys (private parts encrypted under the master key),
-- service tokens.

CREATE TABLE refresh_tokens (
  token_hash  text PRIMARY KEY,
  session_id  uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  rotated_at  timestamptz,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens(session_id);
CREATE INDEX sessions_revoked_at ON sessions(revoked_at);

CREATE TABLE signing_keys (
  id           text PRIMARY KEY,
  alg          text NOT NULL,
  public_jwk   jsonb NOT NULL,
  private_key  text NOT NULL,
  status       text NOT NULL DEFAULT 'active',
  retired_at   timestamptz,
  expires_at   timestamptz,
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL
);

CREATE TABLE service_tokens (
  id          uuid PRIMARY KEY,
  service     text NOT NULL,
  kid         text NOT NULL REFERENCES signing_keys(id),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX service_tokens_revoked_at ON service_tokens(revoked_at);
