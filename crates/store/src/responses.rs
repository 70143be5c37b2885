//! Stored Responses API conversations, for a bus that keeps none of its own
//! (the in-process bus of `aiprox all`): an opaque entry per response id, and
//! when it was put, so retention deletes it with the logs of its day (each
//! backend's `drop_before`). Each query is written once with `$n` parameters;
//! MySQL takes them as `?` and, lacking `ON CONFLICT`, replaces with `REPLACE`.

use crate::config::on_pool;
use crate::{Store, StoreError};

const PUT: &str = "INSERT INTO stored_responses (id, entry, created_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (id) DO UPDATE SET entry = EXCLUDED.entry, created_at = EXCLUDED.created_at";
/// A whole-row replace: nothing refers to a stored response, so MySQL's
/// delete-then-insert is the same as an update.
const PUT_MYSQL: &str = "REPLACE INTO stored_responses (id, entry, created_at) VALUES (?, ?, ?)";
const GET: &str = "SELECT entry FROM stored_responses WHERE id = $1";
const DELETE: &str = "DELETE FROM stored_responses WHERE id = $1";

impl Store {
    /// Stores the entry of response `id`, put at `created_at_us` (Unix µs), in
    /// place of any entry it had (which then counts from this time).
    pub async fn put_response(
        &self,
        id: &str,
        entry: &[u8],
        created_at_us: i64,
    ) -> Result<(), StoreError> {
        let put = if matches!(self, Store::MySql(_)) {
            PUT_MYSQL
        } else {
            PUT
        };
        on_pool!(self, pool, sql => {
            sqlx::query(sql(put))
                .bind(id)
                .bind(entry)
                .bind(created_at_us)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The entry of response `id`; `None` when never put, deleted, or gone
    /// with retention.
    pub async fn get_response(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_pool!(self, pool, sql => {
            sqlx::query_scalar(sql(GET)).bind(id).fetch_optional(pool).await?
        }))
    }

    /// Deletes the entry of response `id`; `false` when there was none.
    pub async fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool, sql => {
            sqlx::query(sql(DELETE)).bind(id).execute(pool).await?.rows_affected()
        });
        Ok(done > 0)
    }
}
