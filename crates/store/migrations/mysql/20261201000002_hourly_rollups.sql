-- The rollups again, per hour: a day's summary reads 24 rows per model ×
-- provider × key instead of 1,440. The logger adds every event to its minute and
-- to its hour in the same transaction; the minutes stay for short ranges and for
-- the partial hours at a range's ends. Filled here from the minutes already kept.
CREATE TABLE usage_rollups_hourly LIKE usage_rollups;

INSERT INTO usage_rollups_hourly
SELECT bucket - MOD(bucket, 3600000000), model, provider, client_key_id,
       sum(requests), sum(errors), sum(input_tokens), sum(output_tokens), sum(cached_tokens),
       sum(cost_usd), sum(latency_us_sum),
       sum(latency_hist_0), sum(latency_hist_1), sum(latency_hist_2), sum(latency_hist_3), sum(latency_hist_4),
       sum(latency_hist_5), sum(latency_hist_6), sum(latency_hist_7), sum(latency_hist_8), sum(latency_hist_9),
       sum(latency_hist_10), sum(latency_hist_11), sum(latency_hist_12), sum(latency_hist_13),
       sum(ttft_hist_0), sum(ttft_hist_1), sum(ttft_hist_2), sum(ttft_hist_3), sum(ttft_hist_4),
       sum(ttft_hist_5), sum(ttft_hist_6), sum(ttft_hist_7), sum(ttft_hist_8), sum(ttft_hist_9),
       sum(ttft_hist_10), sum(ttft_hist_11), sum(ttft_hist_12), sum(ttft_hist_13)
FROM usage_rollups
GROUP BY 1, 2, 3, 4;
