-- registry: instances carry the route prefixes they serve; one monotonic index for blocking queries.
ALTER TABLE module_instances ADD COLUMN routes jsonb NOT NULL DEFAULT '[]';
ALTER TABLE module_instances ADD COLUMN critical_since timestamptz;

CREATE TABLE registry_index (
  id          integer PRIMARY KEY CHECK (id = 1),
  value       bigint NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
INSERT INTO registry_index (id, value, created_at, updated_at) VALUES (1, 1, now(), now());
