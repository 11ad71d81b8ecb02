-- events: numbers are given after commit. Writers insert events without a seq, concurrently; one sequencer
-- at a time (any keel process, under a try-lock) numbers the committed unnumbered ones from this counter
-- (a counter, not MAX(seq): retention may delete the newest events of an idle log). Before, every writer of
-- the fleet took one advisory lock through its commit, so the fleet committed events one at a time.
CREATE TABLE event_sequence (
  id          integer PRIMARY KEY CHECK (id = 1),
  last        bigint NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
INSERT INTO event_sequence (id, last, created_at, updated_at)
SELECT 1, COALESCE(MAX(seq), 0), now(), now() FROM observability_events;
ALTER TABLE observability_events ALTER COLUMN seq DROP IDENTITY;
ALTER TABLE observability_events ALTER COLUMN seq DROP NOT NULL;
CREATE INDEX observability_events_unnumbered ON observability_events (id) WHERE seq IS NULL;
