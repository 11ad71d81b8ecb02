-- Routes of an instance that need no token at the gateway ("POST /v1/hooks/incoming"), as the module declares
-- them: keel's processes send their modules' public routes, a third party names its own (each at or below
-- one of its route prefixes). The gateway lets requests for them through without a token.
ALTER TABLE module_instances ADD COLUMN public_routes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(public_routes));
