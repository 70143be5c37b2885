-- The rollups again, per hour: a day's summary reads 24 rows per model ×
-- provider × key instead of 1,440. The logger adds every event to its minute and
-- to its hour in the same transaction; the minutes stay for short ranges and for
-- the partial hours at a range's ends. Filled here from the minutes already kept.
CREATE TABLE usage_rollups_hourly (
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

INSERT INTO usage_rollups_hourly
SELECT bucket - bucket % 3600000000, model, provider, client_key_id,
       sum(requests), sum(errors), sum(input_tokens), sum(output_tokens), sum(cached_tokens),
       sum(cost_usd), sum(latency_us_sum),
       json_array(sum(json_extract(latency_hist, '$[0]')), sum(json_extract(latency_hist, '$[1]')), sum(json_extract(latency_hist, '$[2]')), sum(json_extract(latency_hist, '$[3]')), sum(json_extract(latency_hist, '$[4]')), sum(json_extract(latency_hist, '$[5]')), sum(json_extract(latency_hist, '$[6]')), sum(json_extract(latency_hist, '$[7]')), sum(json_extract(latency_hist, '$[8]')), sum(json_extract(latency_hist, '$[9]')), sum(json_extract(latency_hist, '$[10]')), sum(json_extract(latency_hist, '$[11]')), sum(json_extract(latency_hist, '$[12]')), sum(json_extract(latency_hist, '$[13]'))),
       json_array(sum(json_extract(ttft_hist, '$[0]')), sum(json_extract(ttft_hist, '$[1]')), sum(json_extract(ttft_hist, '$[2]')), sum(json_extract(ttft_hist, '$[3]')), sum(json_extract(ttft_hist, '$[4]')), sum(json_extract(ttft_hist, '$[5]')), sum(json_extract(ttft_hist, '$[6]')), sum(json_extract(ttft_hist, '$[7]')), sum(json_extract(ttft_hist, '$[8]')), sum(json_extract(ttft_hist, '$[9]')), sum(json_extract(ttft_hist, '$[10]')), sum(json_extract(ttft_hist, '$[11]')), sum(json_extract(ttft_hist, '$[12]')), sum(json_extract(ttft_hist, '$[13]')))
FROM usage_rollups
GROUP BY 1, 2, 3, 4;
