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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invalid,
    NotFound,
    /// The change conflicts with what is stored (a name taken, a provider in use).
    Conflict,
    Unauthorized,
    Unavailable,
}

impl ApiError {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
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
    pub publisher: crate::config::Publisher,
    /// Seals provider API keys; without it only `api_key_env` is accepted.
    pub secret: Option<gateway::secret::SecretKey>,
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
        let limit = q.limit.filter(|l| *l > 0).unwrap_or(50);
        Ok(self
            .store
            .list_logs(&q.filter, cursor.as_ref(), limit)
            .await?)
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
        Ok(self
            .store
            .usage_series(from_ms * 1000, to_ms * 1000, step_s * 1_000_000, split)
            .await?)
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
