-- Stored Responses API conversations where the bus is in-process (`aiprox
-- all`; on NATS they are in the `aiprox-responses` bucket): the gateway's entry
-- for each response id, as it serialised it, and when it was put (Unix µs).
-- Retention deletes them with the logs of the same days, in bounded batches
-- along `created_at` (hence its index).
CREATE TABLE stored_responses (
    id         VARCHAR(255) NOT NULL PRIMARY KEY,
    entry      LONGBLOB     NOT NULL,
    created_at BIGINT       NOT NULL,
    INDEX stored_responses_created_at (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
