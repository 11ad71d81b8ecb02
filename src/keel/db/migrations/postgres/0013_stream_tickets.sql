-- Single-use tickets for GET /v1/stream, whose browser client (EventSource) cannot send a header: a ticket
-- stands for the caller whose token asked for it, for 30 seconds. Only its SHA-256 is stored; redeeming it
-- deletes it, and lapsed ones are swept. Any keel process may redeem a ticket another issued.
CREATE TABLE stream_tickets (
  id          text PRIMARY KEY,
  principal   text NOT NULL,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expires_at ON stream_tickets (expires_at);
