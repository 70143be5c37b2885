-- Stored Responses API conversations where the bus is in-process (`aiprox
-- all`; on NATS they are in the `aiprox-responses` bucket): the gateway's entry
-- for each response id, as it serialised it, and when it was put (Unix µs).
-- Retention deletes them with the logs of the same days.
CREATE TABLE stored_responses (
    id         TEXT   NOT NULL PRIMARY KEY,
    entry      BLOB   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX stored_responses_created_at ON stored_responses (created_at);
