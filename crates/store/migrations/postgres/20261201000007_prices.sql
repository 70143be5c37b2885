-- Prices set through the admin API, by provider/model, alias or model: over
-- gateway.prices and the bundled table. The price as JSON (USD per million
-- tokens: input, output, cached_input, cache_write).
CREATE TABLE prices (
    key        text NOT NULL PRIMARY KEY,
    spec       text NOT NULL,
    updated_at bigint NOT NULL
);
