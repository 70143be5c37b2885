-- Prices set through the admin API, by provider/model, alias or model: over
-- gateway.prices and the bundled table. The price as JSON (USD per million
-- tokens: input, output, cached_input, cache_write).
CREATE TABLE prices (
    key        TEXT NOT NULL PRIMARY KEY,
    spec       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
