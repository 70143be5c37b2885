-- Live configuration, the source of truth the admin API edits: providers (their
-- upstream API key sealed with AIPROX_SECRET_KEY, never stored in clear), model
-- mappings (alias -> ordered targets) and client API keys (SHA-256 hashes only).
-- Times in Unix microseconds.
CREATE TABLE providers (
    name         TEXT   NOT NULL PRIMARY KEY,
    spec         TEXT   NOT NULL,
    api_key_sealed TEXT,
    api_key_mask TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE model_mappings (
    alias      TEXT   NOT NULL PRIMARY KEY,
    targets    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    hash       TEXT   NOT NULL UNIQUE,
    prefix     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Whether the YAML seed was applied: it seeds the first start only, so a provider
-- deleted through the API does not come back at the next start.
CREATE TABLE config_seeded (
    seeded_at BIGINT NOT NULL
);
