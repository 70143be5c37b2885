-- The same schema for MySQL 8 and MariaDB 10.11. Choices where they differ from
-- Postgres:
-- - Times are Unix microseconds in BIGINT, as on SQLite: no time zone to get wrong.
-- - No partitions: retention deletes rows in bounded batches (src/mysql/retention.rs).
-- - Text that is filtered, grouped or keyed on is VARCHAR(255), utf8mb4_bin: exact
--   and case-sensitive like Postgres text (the store clips longer values, so a
--   log row and its rollup agree). Bodies are LONGTEXT utf8mb4_unicode_ci, so the
--   Logs page's text search is case-insensitive.
-- - Each table names its character set: a server's default may be latin1.
-- - Histograms are one BIGINT column per bucket of store::LATENCY_BUCKETS_MS
--   (latency_hist_0 .. latency_hist_13, the last counts everything above), so the
--   rollup upsert and the dashboard sums are plain arithmetic.
CREATE TABLE request_logs (
    request_id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    received_at         BIGINT       NOT NULL,
    endpoint            VARCHAR(255) NOT NULL,
    client_key_id       VARCHAR(255) NOT NULL,
    requested_model     VARCHAR(255) NOT NULL,
    provider            VARCHAR(255) NOT NULL,
    upstream_model      VARCHAR(255) NOT NULL,
    stream              BOOLEAN      NOT NULL,
    status              INT          NOT NULL,
    error_kind          VARCHAR(255) NOT NULL,
    error_message       MEDIUMTEXT   NOT NULL,
    input_tokens        BIGINT       NOT NULL,
    output_tokens       BIGINT       NOT NULL,
    cached_tokens       BIGINT       NOT NULL,
    cost_usd            DOUBLE       NOT NULL,
    latency_us          BIGINT       NOT NULL,
    ttft_us             BIGINT       NOT NULL,
    upstream_latency_us BIGINT       NOT NULL,
    -- Clustered by time: inserts append, the Logs page and retention read ranges.
    PRIMARY KEY (received_at, request_id),
    UNIQUE KEY request_logs_id (request_id),
    KEY request_logs_model (requested_model, received_at),
    KEY request_logs_provider (provider, received_at),
    KEY request_logs_status (status, received_at),
    KEY request_logs_key (client_key_id, received_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Bodies, apart from the metadata the Logs page filters on.
CREATE TABLE request_contents (
    request_id    CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    received_at   BIGINT   NOT NULL,
    request_body  LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    response_body LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    PRIMARY KEY (received_at, request_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE media_resources (
    sha256     VARCHAR(255) NOT NULL PRIMARY KEY,
    mime       VARCHAR(255) NOT NULL,
    size       BIGINT       NOT NULL,
    path       TEXT         NOT NULL,
    created_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE request_media (
    request_id  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    received_at BIGINT       NOT NULL,
    sha256      VARCHAR(255) NOT NULL,
    PRIMARY KEY (request_id, sha256),
    KEY request_media_sha (sha256),
    -- Retention deletes by time.
    KEY request_media_time (received_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Per minute x model x provider x key; updated in the insert's transaction so
-- dashboards never scan raw logs.
CREATE TABLE usage_rollups (
    bucket         BIGINT       NOT NULL,
    model          VARCHAR(255) NOT NULL,
    provider       VARCHAR(255) NOT NULL,
    client_key_id  VARCHAR(255) NOT NULL,
    requests       BIGINT       NOT NULL,
    errors         BIGINT       NOT NULL,
    input_tokens   BIGINT       NOT NULL,
    output_tokens  BIGINT       NOT NULL,
    cached_tokens  BIGINT       NOT NULL,
    cost_usd       DOUBLE       NOT NULL,
    latency_us_sum BIGINT       NOT NULL,
    latency_hist_0 BIGINT NOT NULL,
    latency_hist_1 BIGINT NOT NULL,
    latency_hist_2 BIGINT NOT NULL,
    latency_hist_3 BIGINT NOT NULL,
    latency_hist_4 BIGINT NOT NULL,
    latency_hist_5 BIGINT NOT NULL,
    latency_hist_6 BIGINT NOT NULL,
    latency_hist_7 BIGINT NOT NULL,
    latency_hist_8 BIGINT NOT NULL,
    latency_hist_9 BIGINT NOT NULL,
    latency_hist_10 BIGINT NOT NULL,
    latency_hist_11 BIGINT NOT NULL,
    latency_hist_12 BIGINT NOT NULL,
    latency_hist_13 BIGINT NOT NULL,
    ttft_hist_0 BIGINT NOT NULL,
    ttft_hist_1 BIGINT NOT NULL,
    ttft_hist_2 BIGINT NOT NULL,
    ttft_hist_3 BIGINT NOT NULL,
    ttft_hist_4 BIGINT NOT NULL,
    ttft_hist_5 BIGINT NOT NULL,
    ttft_hist_6 BIGINT NOT NULL,
    ttft_hist_7 BIGINT NOT NULL,
    ttft_hist_8 BIGINT NOT NULL,
    ttft_hist_9 BIGINT NOT NULL,
    ttft_hist_10 BIGINT NOT NULL,
    ttft_hist_11 BIGINT NOT NULL,
    ttft_hist_12 BIGINT NOT NULL,
    ttft_hist_13 BIGINT NOT NULL,
    PRIMARY KEY (bucket, model, provider, client_key_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
