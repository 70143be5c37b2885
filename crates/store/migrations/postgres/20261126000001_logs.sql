-- Request logs: narrow metadata, partitioned by day so retention drops whole
-- partitions. Partitions are created ahead by the logger.
CREATE TABLE request_logs (
    request_id          uuid        NOT NULL,
    received_at         timestamptz NOT NULL,
    endpoint            text        NOT NULL,
    client_key_id       text        NOT NULL,
    requested_model     text        NOT NULL,
    provider            text        NOT NULL,
    upstream_model      text        NOT NULL,
    stream              boolean     NOT NULL,
    status              integer     NOT NULL,
    error_kind          text        NOT NULL,
    error_message       text        NOT NULL,
    input_tokens        bigint      NOT NULL,
    output_tokens       bigint      NOT NULL,
    cached_tokens       bigint      NOT NULL,
    cost_usd            double precision NOT NULL,
    latency_us          bigint      NOT NULL,
    ttft_us             bigint      NOT NULL,
    upstream_latency_us bigint      NOT NULL,
    PRIMARY KEY (received_at, request_id)
) PARTITION BY RANGE (received_at);

CREATE INDEX request_logs_model ON request_logs (requested_model, received_at DESC);
CREATE INDEX request_logs_provider ON request_logs (provider, received_at DESC);
CREATE INDEX request_logs_status ON request_logs (status, received_at DESC);
CREATE INDEX request_logs_key ON request_logs (client_key_id, received_at DESC);
CREATE INDEX request_logs_id ON request_logs (request_id);

-- Bodies, apart from the metadata the Logs page filters on.
CREATE TABLE request_contents (
    request_id    uuid        NOT NULL,
    received_at   timestamptz NOT NULL,
    request_body  text        NOT NULL,
    response_body text        NOT NULL,
    PRIMARY KEY (received_at, request_id)
) PARTITION BY RANGE (received_at);

CREATE TABLE media_resources (
    sha256     text        PRIMARY KEY,
    mime       text        NOT NULL,
    size       bigint      NOT NULL,
    path       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE request_media (
    request_id  uuid        NOT NULL,
    received_at timestamptz NOT NULL,
    sha256      text        NOT NULL,
    PRIMARY KEY (request_id, sha256)
);
CREATE INDEX request_media_sha ON request_media (sha256);

-- Per minute x model x provider x key; updated in the insert's transaction so
-- dashboards never scan raw logs. Histograms count latencies per bucket of
-- store::LATENCY_BUCKETS_MS (the last bucket is everything above).
CREATE TABLE usage_rollups (
    bucket         timestamptz NOT NULL,
    model          text        NOT NULL,
    provider       text        NOT NULL,
    client_key_id  text        NOT NULL,
    requests       bigint      NOT NULL,
    errors         bigint      NOT NULL,
    input_tokens   bigint      NOT NULL,
    output_tokens  bigint      NOT NULL,
    cached_tokens  bigint      NOT NULL,
    cost_usd       double precision NOT NULL,
    latency_us_sum bigint      NOT NULL,
    latency_hist   bigint[]    NOT NULL,
    ttft_hist      bigint[]    NOT NULL,
    PRIMARY KEY (bucket, model, provider, client_key_id)
);
