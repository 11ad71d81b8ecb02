-- auth: refresh tokens (hashes only), signing keys (private parts encrypted under the master key),
-- service tokens.

CREATE TABLE refresh_tokens (
  token_hash  TEXT PRIMARY KEY,                 -- SHA-256 hex of the token; the token itself is never stored
  session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  rotated_at  TEXT,                             -- when its successor was issued; NULL for the current one
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens(session_id);
CREATE INDEX sessions_revoked_at ON sessions(revoked_at);

CREATE TABLE signing_keys (
  id           TEXT PRIMARY KEY,                -- the JWS "kid"
  alg          TEXT NOT NULL,                   -- EdDSA or ES256
  public_jwk   TEXT NOT NULL CHECK (json_valid(public_jwk)),
  private_key  TEXT NOT NULL,                   -- base64url(nonce || XChaCha20-Poly1305(master key, key))
  status       TEXT NOT NULL DEFAULT 'active',  -- active or retired
  retired_at   TEXT,
  expires_at   TEXT,                            -- a retired key leaves the JWKS after this
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);

CREATE TABLE service_tokens (
  id          TEXT PRIMARY KEY,                 -- the token's "sid"
  service     TEXT NOT NULL,
  kid         TEXT NOT NULL REFERENCES signing_keys(id),
  expires_at  TEXT NOT NULL,
  revoked_at  TEXT,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE INDEX service_tokens_revoked_at ON service_tokens(revoked_at);
