-- /health's write probe: each process rewrites its own row every half second, so a database that can no
-- longer store anything shows on /health even while no client writes.
CREATE TABLE health_writes (
  id          TEXT PRIMARY KEY,
  checked_at  TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
