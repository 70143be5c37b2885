//! What the admin API does, whichever face (HTTP/JSON or gRPC) asked.

use std::path::PathBuf;

use store::{Cursor, LogFilter, LogRow, LogSummary, Store, UsageSummary};

/// An admin error: a kind (HTTP status and gRPC code follow from it), a stable
/// code and a message.
#[derive(Debug)]
pub struct ApiError {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
    /// The input field the error is about, when it is about one (the UI shows
    /// the message under that field).
    pub field: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invalid,
    NotFound,
    /// The change conflicts with what is stored (a name taken, a provider in use).
    Conflict,
    Unauthorized,
    /// Authenticated, but this request may not do that (a cookie write without
    /// the CSRF header).
    Forbidden,
    Unavailable,
}

impl ApiError {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        tracing::error!(error = %e, "database error");
        Self::new(
            Kind::Unavailable,
            "database_unavailable",
            "the database did not answer",
        )
    }
}

/// Microseconds since the Unix epoch: the stored timestamps' unit.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A refused input: 400 with its code.
impl ApiError {
    /// The same error, about the input field `field`.
    #[must_use]
    pub fn at(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(Kind::Invalid, code, message)
}

/// A name or alias: 1 to 200 characters, no spaces or control characters.
pub(crate) fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// JSON of what is about to be stored; a failure is an error, never an empty value.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, "not serialisable");
        ApiError::new(Kind::Unavailable, "serialisation_failed", e.to_string())
    })
}

/// How long one page of a text search may scan before answering with what it
/// found so far (and a cursor to go on).
pub const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_millis(60);

/// The Logs query as both faces receive it.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub filter: LogFilter,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// Checks a UUID-shaped id without allocating.
fn is_uuid(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[derive(Debug, Clone)]
pub struct AdminCore {
    pub store: Store,
    pub media_root: PathBuf,
    /// Sends the configuration to the gateways after every change.
    pub publisher: crate::publisher::Publisher,
    /// Seals provider API keys; without it only `api_key_env` is accepted.
    pub secret: Option<config_model::secret::SecretKey>,
}

impl AdminCore {
    pub async fn list_logs(
        &self,
        q: &LogQuery,
    ) -> Result<(Vec<LogSummary>, Option<Cursor>), ApiError> {
        if let Some(s) = q.filter.status_class
            && !(1..=5).contains(&s)
        {
            return Err(ApiError::new(
                Kind::Invalid,
                "invalid_query",
                "status is a class: 1 to 5",
            ));
        }
        let cursor =
            match q.cursor.as_deref().filter(|c| !c.is_empty()) {
                Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
                    ApiError::new(Kind::Invalid, "invalid_cursor", "unknown cursor")
                })?),
                None => None,
            };
        let limit = q.limit.filter(|l| *l > 0).unwrap_or(50).min(500);
        if q.filter.text.is_some() {
            return self.search_logs(&q.filter, cursor, limit).await;
        }
        Ok(self
            .store
            .list_logs(&q.filter, cursor.as_ref(), limit)
            .await?)
    }

    /// Text search, time-boxed: scans back from the newest log (or the cursor) in
    /// windows that grow while little is found, and stops after [`SEARCH_BUDGET`].
    /// A page may then hold fewer than `limit` rows, with a cursor that continues
    /// the search below the last window scanned: text found in one body among
    /// millions answers page by page instead of in one multi-second scan.
    async fn search_logs(
        &self,
        filter: &LogFilter,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<LogSummary>, Option<Cursor>), ApiError> {
        let Some((oldest, newest)) = self.store.log_time_range().await? else {
            return Ok((Vec::new(), None));
        };
        let floor = filter.from_us.map_or(oldest, |f| f.max(oldest));
        let mut top = [
            Some(newest + 1),
            filter.to_us,
            cursor.as_ref().map(|c| c.received_at_us + 1),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(newest + 1);
        let started = std::time::Instant::now();
        let mut width: i64 = 3_600_000_000;
        let mut after = cursor;
        let mut rows = Vec::new();
        while top > floor {
            let bottom = top.saturating_sub(width).max(floor);
            let window = LogFilter {
                from_us: Some(bottom),
                to_us: Some(top),
                ..filter.clone()
            };
            let want = limit - u32::try_from(rows.len()).unwrap_or(limit);
            let t = std::time::Instant::now();
            let (found, next) = self
                .store
                .list_logs(&window, after.take().as_ref(), want)
                .await?;
            let took = t.elapsed();
            rows.extend(found);
            if next.is_some() || rows.len() >= limit as usize {
                return Ok((rows, next));
            }
            top = bottom;
            let left = SEARCH_BUDGET.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            // Grow the window, but not past what the time left can scan at the
            // rate of the last one.
            let rate = took.as_secs_f64() / width as f64;
            let affordable = if rate > 0.0 {
                left.as_secs_f64() / rate
            } else {
                f64::MAX
            };
            width = (width.saturating_mul(4) as f64)
                .min(affordable)
                .max(60_000_000.0) as i64;
        }
        let next = (top > floor).then(|| Cursor {
            received_at_us: top,
            request_id: "00000000-0000-0000-0000-000000000000".to_owned(),
        });
        Ok((rows, next))
    }

    pub async fn get_log(&self, id: &str) -> Result<LogRow, ApiError> {
        let not_found = || ApiError::new(Kind::NotFound, "log_not_found", format!("no log {id}"));
        if !is_uuid(id) {
            return Err(not_found());
        }
        self.store.log(id).await?.ok_or_else(not_found)
    }

    /// The media file's type and bytes.
    pub async fn media(&self, sha: &str) -> Result<(String, Vec<u8>), ApiError> {
        let not_found = || ApiError::new(Kind::NotFound, "media_not_found", "no such media");
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let (mime, path) = self.store.media(sha).await?.ok_or_else(not_found)?;
        let bytes = tokio::fs::read(self.media_root.join(path))
            .await
            .map_err(|_| {
                ApiError::new(
                    Kind::NotFound,
                    "media_not_written",
                    "the media file is not written yet",
                )
            })?;
        Ok((mime, bytes))
    }

    pub async fn summary(&self, from_ms: i64, to_ms: i64) -> Result<UsageSummary, ApiError> {
        if to_ms <= from_ms {
            return Err(ApiError::new(
                Kind::Invalid,
                "invalid_range",
                "`to` must be after `from`",
            ));
        }
        Ok(self
            .store
            .usage_summary(from_ms * 1000, to_ms * 1000)
            .await?)
    }
}

impl AdminCore {
    /// A usage time series: `step_s` buckets (at least a minute), split by `split`
    /// (`none`, `model`, `provider`, `key`).
    pub async fn series(
        &self,
        from_ms: i64,
        to_ms: i64,
        step_s: i64,
        split: &str,
        percentiles: bool,
    ) -> Result<Vec<store::SeriesPoint>, ApiError> {
        let split = match split {
            "" | "none" => store::Split::None,
            "model" => store::Split::Model,
            "provider" => store::Split::Provider,
            "key" => store::Split::Key,
            other => {
                return Err(ApiError::new(
                    Kind::Invalid,
                    "invalid_split",
                    format!("split is none, model, provider or key, not '{other}'"),
                ));
            }
        };
        if to_ms <= from_ms {
            return Err(ApiError::new(
                Kind::Invalid,
                "invalid_range",
                "`to` must be after `from`",
            ));
        }
        let step_s = step_s.max(60);
        if (to_ms - from_ms) / 1000 / step_s > 10_000 {
            return Err(ApiError::new(
                Kind::Invalid,
                "too_many_buckets",
                "more than 10,000 buckets: use a larger step",
            ));
        }
        let (from, to, step) = (from_ms * 1000, to_ms * 1000, step_s * 1_000_000);
        Ok(if percentiles {
            self.store.usage_series(from, to, step, split).await?
        } else {
            self.store
                .usage_series_counts(from, to, step, split)
                .await?
        })
    }
}

/// The download path of a media file.
pub fn media_url(sha: &str) -> String {
    format!("/api/v1/media/{sha}")
}

/// Compares in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
