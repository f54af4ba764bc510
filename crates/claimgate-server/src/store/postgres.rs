//! The shared store: PostgreSQL, for several server nodes on one database.
//!
//! A use is one `UPDATE ... RETURNING` on the token's row: PostgreSQL locks the row for the
//! statement, so concurrent uses from any number of nodes consume the count exactly once each.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{SCHEMA, SigningKeyRecord, Store, StoreError, TokenFilter, TokenRecord};

/// A pool of connections to one PostgreSQL database. Connections that break are replaced on
/// the next use, so the store recovers by itself when the database comes back.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and creates the
    /// tables if they are missing. With `ca` (PEM CA certificates), every connection is TLS,
    /// the database's certificate verified against them and its host name (never a fallback
    /// to plain text, whatever the URL's `sslmode`); without, connections are plain, which the
    /// configuration allows only to loopback or on a declared private network.
    pub async fn connect(url: &str, ca: Option<&std::path::Path>) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError(format!("store URL: {e}")))?;
        if config.get_application_name().is_none() {
            // So that a DBA sees which sessions are ours (pg_stat_activity).
            config.application_name("claimgate");
        }
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match ca {
            Some(ca) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Manager::from_config(config, tls_connector(ca)?, recycling)
            }
            None => Manager::from_config(config, NoTls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(StoreError::of)?;
        let store = PostgresStore { pool };
        // Nodes starting together would race on CREATE TABLE IF NOT EXISTS (it is not atomic in
        // PostgreSQL's catalogue): one transaction-scoped advisory lock serialises them.
        let schema = format!("BEGIN; SELECT pg_advisory_xact_lock(7411057066); {}; COMMIT;", SCHEMA.join("; "));
        store.client().await?.batch_execute(&schema).await.map_err(StoreError::of)?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(StoreError::of)
    }
}

/// rustls (ring, as the listener) trusting only the CA certificates in `ca`.
fn tls_connector(ca: &std::path::Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let problem = |e: &dyn std::fmt::Display| StoreError(format!("store_ca {}: {e}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).map_err(|e| problem(&e))? {
        roots.add(certificate.map_err(|e| problem(&e))?).map_err(|e| problem(&e))?;
    }
    if roots.is_empty() {
        return Err(problem(&"no certificate in the file"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| problem(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}

fn hash_of(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| StoreError("a token hash in the store is not 32 bytes".into()))
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn insert_token(&self, r: &TokenRecord) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO tokens (hash, body, expire_time, num_uses, uses_left) VALUES ($1, $2, $3, $4, $5)",
                &[&&r.hash[..], &r.body(), &r.expire_time, &r.num_uses, &r.uses_left],
            )
            .await
            .map(drop)
            .map_err(StoreError::of)
    }

    async fn get_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT hash, body, expire_time, uses_left, last_renewal FROM tokens
                 WHERE hash = $1 AND NOT revoked AND expire_time > $2 AND (num_uses = 0 OR uses_left > 0)",
                &[&&hash[..], &now],
            )
            .await
            .map_err(StoreError::of)?;
        row.map(|row| TokenRecord::from_parts(hash_of(row.get(0))?, row.get(1), row.get(2), row.get(3), row.get(4)))
            .transpose()
    }

    async fn use_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "UPDATE tokens SET uses_left = CASE WHEN num_uses > 0 THEN uses_left - 1 ELSE uses_left END
                 WHERE hash = $1 AND NOT revoked AND expire_time > $2 AND (num_uses = 0 OR uses_left > 0)
                 RETURNING hash, body, expire_time, uses_left, last_renewal",
                &[&&hash[..], &now],
            )
            .await
            .map_err(StoreError::of)?;
        row.map(|row| TokenRecord::from_parts(hash_of(row.get(0))?, row.get(1), row.get(2), row.get(3), row.get(4)))
            .transpose()
    }

    async fn renew_token(&self, hash: &[u8; 32], expire_time: i64, now: i64) -> Result<bool, StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE tokens SET expire_time = $1, last_renewal = $2 WHERE hash = $3 AND NOT revoked AND expire_time > $2",
                &[&expire_time, &now, &&hash[..]],
            )
            .await
            .map(|n| n == 1)
            .map_err(StoreError::of)
    }

    async fn revoke_token(&self, hash: &[u8; 32], now: i64) -> Result<bool, StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE tokens SET revoked = TRUE WHERE hash = $1 AND NOT revoked AND expire_time > $2",
                &[&&hash[..], &now],
            )
            .await
            .map(|n| n == 1)
            .map_err(StoreError::of)
    }

    async fn revoke_matching(&self, filter: &TokenFilter, now: i64) -> Result<u64, StoreError> {
        if filter.is_empty() {
            return Ok(0);
        }
        let [accessor, provider, role, identity] = filter.fields();
        // The fields live in the record's JSON body: a scan, which an operator's revocation can
        // afford (logins never run it).
        self.client()
            .await?
            .execute(
                "UPDATE tokens SET revoked = TRUE
                 WHERE NOT revoked AND expire_time > $1 AND (num_uses = 0 OR uses_left > 0)
                 AND ($2::text IS NULL OR (body::jsonb ->> 'accessor') = $2::text)
                 AND ($3::text IS NULL OR (body::jsonb ->> 'provider') = $3::text)
                 AND ($4::text IS NULL OR (body::jsonb ->> 'role') = $4::text)
                 AND ($5::text IS NULL OR (body::jsonb ->> 'identity') = $5::text)",
                &[&now, &accessor, &provider, &role, &identity],
            )
            .await
            .map_err(StoreError::of)
    }

    async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        self.client()
            .await?
            .execute("DELETE FROM tokens WHERE expire_time < $1", &[&before])
            .await
            .map_err(StoreError::of)
    }

    async fn signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT kid, pkcs8, activates, retires, published_until FROM signing_keys
                 WHERE published_until > $1 ORDER BY activates",
                &[&now],
            )
            .await
            .map_err(StoreError::of)?;
        Ok(rows
            .iter()
            .map(|row| SigningKeyRecord {
                kid: row.get(0),
                pkcs8: row.get(1),
                activates: row.get(2),
                retires: row.get(3),
                published_until: row.get(4),
            })
            .collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(StoreError::of)?;
        // The lock first, in its own statement: under READ COMMITTED the insert's `NOT EXISTS`
        // then sees whatever a node that held the lock before us committed.
        transaction.execute("SELECT pg_advisory_xact_lock(7411057067)", &[]).await.map_err(StoreError::of)?;
        let inserted = transaction
            .execute(
                "INSERT INTO signing_keys (kid, pkcs8, activates, retires, published_until)
                 SELECT $1::TEXT, $2::BYTEA, $3::BIGINT, $4::BIGINT, $5::BIGINT
                 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE activates <= $3::BIGINT AND $3::BIGINT < retires)",
                &[&key.kid, &key.pkcs8, &key.activates, &key.retires, &key.published_until],
            )
            .await
            .map_err(StoreError::of)?;
        transaction.commit().await.map_err(StoreError::of)?;
        Ok(inserted == 1)
    }

    async fn batch_key(&self, candidate: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        let client = self.client().await?;
        // ON CONFLICT makes the insert atomic against any other node's: one key is kept.
        client
            .execute(
                "INSERT INTO batch_keys (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&candidate.as_slice()],
            )
            .await
            .map_err(StoreError::of)?;
        let row = client.query_one("SELECT secret FROM batch_keys WHERE id = 1", &[]).await.map_err(StoreError::of)?;
        Ok(row.get(0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await.map(drop).map_err(StoreError::of)
    }
}
