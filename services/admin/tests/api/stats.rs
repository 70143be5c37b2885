//! Usage statistics over HTTP, from the rollups: the summary and the series of
//! a window agree with the rows inserted in it (rows before and after it left
//! out); an unknown split refused.

use crate::{Api, NOW_MS, with_logs, with_spread_logs};

/// The rows of the window, with rows before it and after it.
async fn with_rows_around_the_window(api: &Api) {
    with_logs(api).await;
    with_spread_logs(api).await;
}

/// Stats from the rollups match the rows inserted in the range.
pub async fn the_summary_agrees_with_the_rows_of_its_window(api: &Api) {
    with_rows_around_the_window(api).await;
    let s = api
        .json(&format!(
            "/api/v1/stats/summary?from={}&to={}",
            NOW_MS - 60_000,
            NOW_MS + 31_000
        ))
        .await;
    assert_eq!(s["requests"], 30);
    assert_eq!(s["errors"], 3);
    assert_eq!(s["input_tokens"], 300);
    assert_eq!(s["output_tokens"], (1..=30).sum::<i64>());
    assert!(s["latency_ms"]["p50"].as_u64().unwrap() >= 30);
    assert!(s["latency_ms"]["p99"].as_u64().unwrap() >= s["latency_ms"]["p50"].as_u64().unwrap());
}

pub async fn the_series_adds_up_to_the_requests_per_model(api: &Api) {
    with_rows_around_the_window(api).await;
    let series = api
        .json(&format!(
            "/api/v1/stats/series?from={}&to={}&step_s=60&split=model",
            NOW_MS - 60_000,
            NOW_MS + 31_000
        ))
        .await;
    let points = series["data"].as_array().unwrap();
    assert_eq!(
        points
            .iter()
            .map(|p| p["requests"].as_i64().unwrap())
            .sum::<i64>(),
        30
    );
    let claude: i64 = points
        .iter()
        .filter(|p| p["group"] == "claude")
        .map(|p| p["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(claude, 15);
}

pub async fn an_unknown_series_split_is_refused(api: &Api) {
    assert_eq!(
        api.get("/api/v1/stats/series?from=0&to=1&split=colour")
            .await
            .status(),
        400
    );
}
