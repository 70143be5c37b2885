-- The rollups again, per hour: a day's summary reads 24 rows per model ×
-- provider × key instead of 1,440. The logger adds every event to its minute and
-- to its hour in the same transaction; the minutes stay for short ranges and for
-- the partial hours at a range's ends. Filled here from the minutes already kept.
CREATE TABLE usage_rollups_hourly (LIKE usage_rollups INCLUDING ALL);

INSERT INTO usage_rollups_hourly
SELECT timestamptz 'epoch' + floor(extract(epoch from bucket) / 3600) * interval '1 hour',
       model, provider, client_key_id,
       sum(requests), sum(errors), sum(input_tokens), sum(output_tokens), sum(cached_tokens),
       sum(cost_usd), sum(latency_us_sum),
       ARRAY[
         sum(latency_hist[1]), sum(latency_hist[2]), sum(latency_hist[3]), sum(latency_hist[4]),
         sum(latency_hist[5]), sum(latency_hist[6]), sum(latency_hist[7]), sum(latency_hist[8]),
         sum(latency_hist[9]), sum(latency_hist[10]), sum(latency_hist[11]), sum(latency_hist[12]),
         sum(latency_hist[13]), sum(latency_hist[14])
       ]::bigint[],
       ARRAY[
         sum(ttft_hist[1]), sum(ttft_hist[2]), sum(ttft_hist[3]), sum(ttft_hist[4]),
         sum(ttft_hist[5]), sum(ttft_hist[6]), sum(ttft_hist[7]), sum(ttft_hist[8]),
         sum(ttft_hist[9]), sum(ttft_hist[10]), sum(ttft_hist[11]), sum(ttft_hist[12]),
         sum(ttft_hist[13]), sum(ttft_hist[14])
       ]::bigint[]
FROM usage_rollups
GROUP BY 1, 2, 3, 4;
