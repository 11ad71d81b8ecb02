-- registry: instances carry the route prefixes they serve; one monotonic index for blocking queries.
ALTER TABLE module_instances ADD COLUMN routes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(routes));
ALTER TABLE module_instances ADD COLUMN critical_since TEXT;

CREATE TABLE registry_index (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  value       INTEGER NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
INSERT INTO registry_index (id, value, created_at, updated_at)
  VALUES (1, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
