//! The embedded store: one SQLite file in the data directory, no setup.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::{SCHEMA, SigningKeyRecord, Store, StoreError, TokenRecord};

/// SQLite in `<data_dir>/claimgate.sqlite3`, created with mode 0600 (it holds the signing keys),
/// in WAL mode with synchronous commits: a token is on disk before the client sees it.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in `data_dir`, creating the folder with mode 0700.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        crate::files::private_dir(data_dir).map_err(|e| StoreError(format!("{}: {e}", data_dir.display())))?;
        let path = data_dir.join("claimgate.sqlite3");
        crate::files::private_file(&path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        let connection = Connection::open(&path).map_err(StoreError::of)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(StoreError::of)?;
        for statement in SCHEMA {
            connection.execute(statement, []).map_err(StoreError::of)?;
        }
        Ok(SqliteStore { connection: Arc::new(Mutex::new(connection)) })
    }

    /// Runs `f` on the connection on a blocking thread (SQLite calls block on the disk).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&connection).map_err(StoreError::of)
        })
        .await
        .map_err(StoreError::of)?
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO tokens (hash, body, expire_time, num_uses, uses_left) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&r.hash[..], r.body(), r.expire_time, r.num_uses, r.uses_left],
            )
            .map(drop)
        })
        .await
    }

    async fn get_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let hash = *hash;
        let row = self
            .with(move |c| {
                c.query_row(
                    "SELECT body, expire_time, uses_left, last_renewal FROM tokens
                     WHERE hash = ?1 AND NOT revoked AND expire_time > ?2 AND (num_uses = 0 OR uses_left > 0)",
                    params![&hash[..], now],
                    |row| Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()
            })
            .await?;
        row.map(|(body, expire, left, renewal)| TokenRecord::from_parts(hash, &body, expire, left, renewal)).transpose()
    }

    async fn use_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let hash = *hash;
        let row = self
            .with(move |c| {
                c.query_row(
                    "UPDATE tokens SET uses_left = CASE WHEN num_uses > 0 THEN uses_left - 1 ELSE uses_left END
                     WHERE hash = ?1 AND NOT revoked AND expire_time > ?2 AND (num_uses = 0 OR uses_left > 0)
                     RETURNING body, expire_time, uses_left, last_renewal",
                    params![&hash[..], now],
                    |row| Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()
            })
            .await?;
        row.map(|(body, expire, left, renewal)| TokenRecord::from_parts(hash, &body, expire, left, renewal)).transpose()
    }

    async fn renew_token(&self, hash: &[u8; 32], expire_time: i64, now: i64) -> Result<bool, StoreError> {
        let hash = *hash;
        self.with(move |c| {
            c.execute(
                "UPDATE tokens SET expire_time = ?1, last_renewal = ?2 WHERE hash = ?3 AND NOT revoked AND expire_time > ?2",
                params![expire_time, now, &hash[..]],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn revoke_token(&self, hash: &[u8; 32], now: i64) -> Result<bool, StoreError> {
        let hash = *hash;
        self.with(move |c| {
            c.execute(
                "UPDATE tokens SET revoked = TRUE WHERE hash = ?1 AND NOT revoked AND expire_time > ?2",
                params![&hash[..], now],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        self.with(move |c| c.execute("DELETE FROM tokens WHERE expire_time < ?1", params![before]).map(|n| n as u64))
            .await
    }

    async fn signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.with(move |c| {
            let mut statement = c.prepare(
                "SELECT kid, pkcs8, activates, retires, published_until FROM signing_keys
                 WHERE published_until > ?1 ORDER BY activates",
            )?;
            let rows = statement.query_map(params![now], |row| {
                Ok(SigningKeyRecord {
                    kid: row.get(0)?,
                    pkcs8: row.get(1)?,
                    activates: row.get(2)?,
                    retires: row.get(3)?,
                    published_until: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO signing_keys (kid, pkcs8, activates, retires, published_until) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.kid, key.pkcs8, key.activates, key.retires, key.published_until],
            )
            .map(drop)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}
