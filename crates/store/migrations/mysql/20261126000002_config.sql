-- Live configuration, the source of truth the admin API edits: providers (their
-- upstream API key sealed with AIPROX_SECRET_KEY, never stored in clear), model
-- mappings (alias -> ordered targets) and client API keys (SHA-256 hashes only).
-- Times in Unix microseconds. Names and ids are VARCHAR(255) utf8mb4_bin (a key
-- must be of bounded length; exact, case-sensitive matches as on Postgres).
CREATE TABLE providers (
    name           VARCHAR(255) NOT NULL PRIMARY KEY,
    spec           MEDIUMTEXT   NOT NULL,
    api_key_sealed TEXT,
    api_key_mask   TEXT,
    created_at     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE model_mappings (
    alias      VARCHAR(255) NOT NULL PRIMARY KEY,
    targets    MEDIUMTEXT   NOT NULL,
    created_at BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE api_keys (
    id         VARCHAR(255) NOT NULL PRIMARY KEY,
    name       TEXT         NOT NULL,
    hash       VARCHAR(255) NOT NULL UNIQUE,
    prefix     TEXT         NOT NULL,
    created_at BIGINT       NOT NULL,
    revoked_at BIGINT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Whether the YAML seed was applied: it seeds the first start only, so a provider
-- deleted through the API does not come back at the next start. (A primary key
-- so servers with sql_require_primary_key accept it; there is one row at most.)
CREATE TABLE config_seeded (
    seeded_at BIGINT NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
