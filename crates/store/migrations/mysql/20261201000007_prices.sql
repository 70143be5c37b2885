-- Prices set through the admin API, by provider/model, alias or model: over
-- gateway.prices and the bundled table. The price as JSON (USD per million
-- tokens: input, output, cached_input, cache_write). `key` is a reserved word
-- in MySQL: quoted wherever it is named.
CREATE TABLE prices (
    `key`      VARCHAR(255) NOT NULL PRIMARY KEY,
    spec       MEDIUMTEXT   NOT NULL,
    updated_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
