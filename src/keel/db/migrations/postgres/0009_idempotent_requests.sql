-- Idempotent creates (CONTRACT.md, "Safety rules"): the answer to a create sent with an Idempotency-Key,
-- stored in the transaction that created it, replayed for the same key from the same principal for 24 h.
CREATE TABLE idempotent_requests (
  scope         text NOT NULL,   -- the principal and the route
  key           text NOT NULL,
  request_hash  text NOT NULL,   -- SHA-256 of the method, path and body: the same key with another body is 422
  status        integer NOT NULL,
  headers       text NOT NULL,   -- JSON [[name, value], ...] of the answer's own headers (ETag)
  body          text NOT NULL,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotent_requests_created ON idempotent_requests(created_at);
