//! The live configuration's tables: providers, model mappings, client API keys,
//! prices. Each query is written once, with `$n` parameters in order, and run on
//! whichever pool the store holds; on MySQL its parameters become `?`. The few
//! whose words differ on MySQL (no `ON CONFLICT`, `key` a reserved word) are
//! each database's [`Words`]; none says `RETURNING`, which MySQL lacks either.

use sqlx::Row;

use crate::{Store, StoreError};

/// A provider as stored: its settings as JSON, its upstream key sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    pub name: String,
    /// The provider's settings (kind, URL, headers…) as JSON, without any key.
    pub spec: String,
    /// The upstream API key, encrypted; never in clear.
    pub api_key_sealed: Option<String>,
    /// What may be shown of the key (`…abcd`).
    pub api_key_mask: Option<String>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

/// A model alias, its targets (JSON array of `{provider, model, weight?,
/// timeout_ms?}`) and how one is picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    pub alias: String,
    pub targets: String,
    /// `fallback`, `weighted`, `least_latency` or `least_busy`.
    pub strategy: String,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

/// A client API key: its SHA-256 (hex), never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub hash: String,
    /// The key's first characters, to recognise it in a list.
    pub prefix: String,
    pub created_at_us: i64,
    pub revoked_at_us: Option<i64>,
    /// Its limits as JSON (`config_model::KeyLimits`); empty when none.
    pub limits: String,
}

/// A price set through the admin API: its key (`provider/model`, alias or
/// model) and the price as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    pub key: String,
    pub spec: String,
    pub updated_at_us: i64,
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever kind it is,
/// `$sql` to the function that words a query of this module for that pool, and
/// `$words` to that database's [`Words`]. Used by the other modules whose
/// queries differ by database at most in their parameters.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $sql:ident => $body:expr) => {
        on_pool!($store, $pool, $sql, _words => $body)
    };
    ($store:expr, $pool:ident, $sql:ident, $words:ident => $body:expr) => {
        match $store {
            $crate::Store::Postgres($pool) => {
                let ($sql, $words) = ($crate::config::as_written, &$crate::config::PORTABLE);
                $body
            }
            $crate::Store::MySql($pool) => {
                let ($sql, $words) = ($crate::config::for_mysql, &$crate::config::MYSQL);
                $body
            }
            $crate::Store::Sqlite($pool) => {
                let ($sql, $words) = ($crate::config::as_written, &$crate::config::PORTABLE);
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// A query of this module as Postgres and SQLite take it.
pub(crate) fn as_written(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.to_owned())
}

/// A query of this module as MySQL takes it: `?` parameters.
pub(crate) fn for_mysql(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(crate::mysql::placeholders(sql))
}

/// The statements whose words differ by database.
pub(crate) struct Words {
    /// Adds a provider unless its name is taken.
    insert_provider: &'static str,
    /// Adds a mapping unless its alias is taken.
    insert_mapping: &'static str,
    /// Every price, by key.
    prices: &'static str,
    /// Sets a price: key, spec, time, then spec and time again for the update.
    put_price: &'static str,
    delete_price: &'static str,
}

/// Postgres and SQLite.
pub(crate) const PORTABLE: Words = Words {
    insert_provider: "INSERT INTO providers (name, spec, api_key_sealed, api_key_mask, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
    insert_mapping: "INSERT INTO model_mappings (alias, targets, strategy, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alias) DO NOTHING",
    prices: "SELECT key, spec, updated_at FROM prices ORDER BY key",
    put_price: "INSERT INTO prices (key, spec, updated_at) VALUES ($1, $2, $3) \
                ON CONFLICT (key) DO UPDATE SET spec = $4, updated_at = $5",
    delete_price: "DELETE FROM prices WHERE key = $1",
};

/// MySQL and MariaDB: a plain `INSERT` that a taken name makes fail (see
/// [`inserted`]), `ON DUPLICATE KEY UPDATE`, `key` quoted.
pub(crate) const MYSQL: Words = Words {
    insert_provider: "INSERT INTO providers (name, spec, api_key_sealed, api_key_mask, created_at, updated_at) \
                      VALUES (?, ?, ?, ?, ?, ?)",
    insert_mapping: "INSERT INTO model_mappings (alias, targets, strategy, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?)",
    prices: "SELECT `key`, spec, updated_at FROM prices ORDER BY `key`",
    put_price: "INSERT INTO prices (`key`, spec, updated_at) VALUES (?, ?, ?) \
                ON DUPLICATE KEY UPDATE spec = ?, updated_at = ?",
    delete_price: "DELETE FROM prices WHERE `key` = ?",
};

/// Whether an insert of [`Words`] that leaves a taken key alone wrote its row,
/// from the rows it wrote. Postgres and SQLite skip a taken key (`ON CONFLICT DO
/// NOTHING`); MySQL refuses it, and the refusal means `false` too. (MySQL's
/// `INSERT IGNORE` would skip it, but would also cut a name too long for its
/// column to fit, silently.)
fn inserted(rows: Result<u64, sqlx::Error>) -> Result<bool, StoreError> {
    match rows {
        Ok(n) => Ok(n == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

const PROVIDER_COLUMNS: &str =
    "SELECT name, spec, api_key_sealed, api_key_mask, created_at, updated_at FROM providers";
const MAPPING_COLUMNS: &str =
    "SELECT alias, targets, strategy, created_at, updated_at FROM model_mappings";
const KEY_COLUMNS: &str =
    "SELECT id, name, hash, prefix, created_at, revoked_at, limits FROM api_keys";

fn provider_of<R: Row>(r: &R) -> Result<ProviderRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ProviderRow {
        name: r.try_get("name")?,
        spec: r.try_get("spec")?,
        api_key_sealed: r.try_get("api_key_sealed")?,
        api_key_mask: r.try_get("api_key_mask")?,
        created_at_us: r.try_get("created_at")?,
        updated_at_us: r.try_get("updated_at")?,
    })
}

fn mapping_of<R: Row>(r: &R) -> Result<MappingRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(MappingRow {
        alias: r.try_get("alias")?,
        targets: r.try_get("targets")?,
        strategy: r.try_get("strategy")?,
        created_at_us: r.try_get("created_at")?,
        updated_at_us: r.try_get("updated_at")?,
    })
}

fn key_of<R: Row>(r: &R) -> Result<KeyRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(KeyRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        hash: r.try_get("hash")?,
        prefix: r.try_get("prefix")?,
        created_at_us: r.try_get("created_at")?,
        revoked_at_us: r.try_get("revoked_at")?,
        limits: r.try_get("limits")?,
    })
}

impl Store {
    pub async fn providers(&self) -> Result<Vec<ProviderRow>, StoreError> {
        let q = format!("{PROVIDER_COLUMNS} ORDER BY name");
        on_pool!(self, pool, sql => {
            let rows = sqlx::query(sql(&q)).fetch_all(pool).await?;
            Ok(rows.iter().map(provider_of).collect::<Result<_, _>>()?)
        })
    }

    pub async fn provider(&self, name: &str) -> Result<Option<ProviderRow>, StoreError> {
        let q = format!("{PROVIDER_COLUMNS} WHERE name = $1");
        on_pool!(self, pool, sql => {
            let row = sqlx::query(sql(&q)).bind(name).fetch_optional(pool).await?;
            Ok(row.as_ref().map(provider_of).transpose()?)
        })
    }

    /// Adds a provider; `false` when the name is taken.
    pub async fn insert_provider(&self, p: &ProviderRow) -> Result<bool, StoreError> {
        on_pool!(self, pool, sql, words => {
            let done = sqlx::query(sql(words.insert_provider))
                .bind(&p.name).bind(&p.spec).bind(&p.api_key_sealed).bind(&p.api_key_mask)
                .bind(p.created_at_us).bind(p.updated_at_us)
                .execute(pool).await;
            inserted(done.map(|d| d.rows_affected()))
        })
    }

    /// Replaces a provider's settings and key; `false` when it does not exist.
    pub async fn update_provider(&self, p: &ProviderRow) -> Result<bool, StoreError> {
        let q = "UPDATE providers SET spec = $1, api_key_sealed = $2, api_key_mask = $3, updated_at = $4 \
                 WHERE name = $5";
        on_pool!(self, pool, sql => {
            let done = sqlx::query(sql(q))
                .bind(&p.spec).bind(&p.api_key_sealed).bind(&p.api_key_mask).bind(p.updated_at_us)
                .bind(&p.name)
                .execute(pool).await?;
            // MySQL counts the rows found, not only those changed (sqlx asks it to).
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn delete_provider(&self, name: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, sql => {
            let done = sqlx::query(sql("DELETE FROM providers WHERE name = $1")).bind(name).execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn mappings(&self) -> Result<Vec<MappingRow>, StoreError> {
        let q = format!("{MAPPING_COLUMNS} ORDER BY alias");
        on_pool!(self, pool, sql => {
            let rows = sqlx::query(sql(&q)).fetch_all(pool).await?;
            Ok(rows.iter().map(mapping_of).collect::<Result<_, _>>()?)
        })
    }

    pub async fn mapping(&self, alias: &str) -> Result<Option<MappingRow>, StoreError> {
        let q = format!("{MAPPING_COLUMNS} WHERE alias = $1");
        on_pool!(self, pool, sql => {
            let row = sqlx::query(sql(&q)).bind(alias).fetch_optional(pool).await?;
            Ok(row.as_ref().map(mapping_of).transpose()?)
        })
    }

    /// Adds a mapping; `false` when the alias is taken.
    pub async fn insert_mapping(&self, m: &MappingRow) -> Result<bool, StoreError> {
        on_pool!(self, pool, sql, words => {
            let done = sqlx::query(sql(words.insert_mapping))
                .bind(&m.alias).bind(&m.targets).bind(&m.strategy).bind(m.created_at_us).bind(m.updated_at_us)
                .execute(pool).await;
            inserted(done.map(|d| d.rows_affected()))
        })
    }

    pub async fn update_mapping(&self, m: &MappingRow) -> Result<bool, StoreError> {
        let q = "UPDATE model_mappings SET targets = $1, strategy = $2, updated_at = $3 WHERE alias = $4";
        on_pool!(self, pool, sql => {
            let done = sqlx::query(sql(q))
                .bind(&m.targets).bind(&m.strategy).bind(m.updated_at_us).bind(&m.alias)
                .execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn delete_mapping(&self, alias: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, sql => {
            let done = sqlx::query(sql("DELETE FROM model_mappings WHERE alias = $1")).bind(alias).execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Every key, revoked ones included, newest first.
    pub async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let q = format!("{KEY_COLUMNS} ORDER BY created_at DESC, id");
        on_pool!(self, pool, sql => {
            let rows = sqlx::query(sql(&q)).fetch_all(pool).await?;
            Ok(rows.iter().map(key_of).collect::<Result<_, _>>()?)
        })
    }

    pub async fn insert_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        let q = "INSERT INTO api_keys (id, name, hash, prefix, created_at, revoked_at, limits) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool, sql => {
            sqlx::query(sql(q))
                .bind(&k.id).bind(&k.name).bind(&k.hash).bind(&k.prefix)
                .bind(k.created_at_us).bind(k.revoked_at_us).bind(&k.limits)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// Revokes a key; `None` when there is no such key, else the key as it now is
    /// (revoking twice keeps the first time).
    pub async fn revoke_key(&self, id: &str, now_us: i64) -> Result<Option<KeyRow>, StoreError> {
        self.update_key(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
            now_us,
            id,
        )
        .await
    }

    /// Replaces a key's limits (JSON); `None` when there is no such key, else
    /// the key as it now is.
    pub async fn set_key_limits(
        &self,
        id: &str,
        limits: &str,
    ) -> Result<Option<KeyRow>, StoreError> {
        self.update_key("UPDATE api_keys SET limits = $1 WHERE id = $2", limits, id)
            .await
    }

    /// Runs `update` (`value`, then the key's `id`) and reads the key back, in
    /// one transaction: what `RETURNING` does where MySQL has none.
    async fn update_key<T>(
        &self,
        update: &str,
        value: T,
        id: &str,
    ) -> Result<Option<KeyRow>, StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        T: for<'q> sqlx::Encode<'q, sqlx::MySql> + sqlx::Type<sqlx::MySql>,
        T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        T: Send,
    {
        let read = format!("{KEY_COLUMNS} WHERE id = $1");
        on_pool!(self, pool, sql => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql(update)).bind(value).bind(id).execute(&mut *tx).await?;
            let row = sqlx::query(sql(&read)).bind(id).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            Ok(row.as_ref().map(key_of).transpose()?)
        })
    }

    /// Every price set through the admin API, by key.
    pub async fn prices(&self) -> Result<Vec<PriceRow>, StoreError> {
        on_pool!(self, pool, sql, words => {
            let rows = sqlx::query(sql(words.prices)).fetch_all(pool).await?;
            Ok(rows
                .iter()
                .map(|r| -> Result<PriceRow, sqlx::Error> {
                    Ok(PriceRow {
                        key: r.try_get("key")?,
                        spec: r.try_get("spec")?,
                        updated_at_us: r.try_get("updated_at")?,
                    })
                })
                .collect::<Result<_, _>>()?)
        })
    }

    /// Sets the price of `key`, a new one or in place of the last.
    pub async fn put_price(&self, p: &PriceRow) -> Result<(), StoreError> {
        on_pool!(self, pool, sql, words => {
            sqlx::query(sql(words.put_price))
                .bind(&p.key).bind(&p.spec).bind(p.updated_at_us)
                .bind(&p.spec).bind(p.updated_at_us)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// Removes the price of `key`; `false` when there was none.
    pub async fn delete_price(&self, key: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, sql, words => {
            let done = sqlx::query(sql(words.delete_price)).bind(key).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Writes the seed configuration if no seed was ever applied, in one
    /// transaction; `false` when the database was seeded before.
    pub async fn seed_config(
        &self,
        providers: &[ProviderRow],
        mappings: &[MappingRow],
        now_us: i64,
    ) -> Result<bool, StoreError> {
        on_pool!(self, pool, sql, words => {
            let mut tx = pool.begin().await?;
            let seeded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM config_seeded")
                .fetch_one(&mut *tx).await?;
            if seeded > 0 {
                return Ok(false);
            }
            // A name taken already (through the API) keeps its row; on MySQL
            // the refused statement alone is undone, not the transaction.
            for p in providers {
                let done = sqlx::query(sql(words.insert_provider))
                    .bind(&p.name).bind(&p.spec).bind(&p.api_key_sealed).bind(&p.api_key_mask)
                    .bind(p.created_at_us).bind(p.updated_at_us)
                    .execute(&mut *tx).await;
                inserted(done.map(|d| d.rows_affected()))?;
            }
            for m in mappings {
                let done = sqlx::query(sql(words.insert_mapping))
                    .bind(&m.alias).bind(&m.targets).bind(&m.strategy).bind(m.created_at_us).bind(m.updated_at_us)
                    .execute(&mut *tx).await;
                inserted(done.map(|d| d.rows_affected()))?;
            }
            sqlx::query(sql("INSERT INTO config_seeded (seeded_at) VALUES ($1)"))
                .bind(now_us).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
