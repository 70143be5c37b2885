-- The same schema for the embedded default: times in Unix microseconds, ids and
-- histograms as text, no partitions (retention deletes rows).
CREATE TABLE request_logs (
    request_id          TEXT    NOT NULL PRIMARY KEY,
    received_at         INTEGER NOT NULL,
    endpoint            TEXT    NOT NULL,
    client_key_id       TEXT    NOT NULL,
    requested_model     TEXT    NOT NULL,
    provider            TEXT    NOT NULL,
    upstream_model      TEXT    NOT NULL,
    stream              INTEGER NOT NULL,
    status              INTEGER NOT NULL,
    error_kind          TEXT    NOT NULL,
    error_message       TEXT    NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cached_tokens       INTEGER NOT NULL,
    cost_usd            REAL    NOT NULL,
    latency_us          INTEGER NOT NULL,
    ttft_us             INTEGER NOT NULL,
    upstream_latency_us INTEGER NOT NULL
);
CREATE INDEX request_logs_time ON request_logs (received_at DESC);
CREATE INDEX request_logs_model ON request_logs (requested_model, received_at DESC);

CREATE TABLE request_contents (
    request_id    TEXT    NOT NULL PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    request_body  TEXT    NOT NULL,
    response_body TEXT    NOT NULL
);

CREATE TABLE media_resources (
    sha256     TEXT    PRIMARY KEY,
    mime       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TABLE request_media (
    request_id  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    sha256      TEXT    NOT NULL,
    PRIMARY KEY (request_id, sha256)
);

CREATE TABLE usage_rollups (
    bucket         INTEGER NOT NULL,
    model          TEXT    NOT NULL,
    provider       TEXT    NOT NULL,
    client_key_id  TEXT    NOT NULL,
    requests       INTEGER NOT NULL,
    errors         INTEGER NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    cached_tokens  INTEGER NOT NULL,
    cost_usd       REAL    NOT NULL,
    latency_us_sum INTEGER NOT NULL,
    latency_hist   TEXT    NOT NULL,
    ttft_hist      TEXT    NOT NULL,
    PRIMARY KEY (bucket, model, provider, client_key_id)
);
