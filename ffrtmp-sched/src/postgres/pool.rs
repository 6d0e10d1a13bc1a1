//! A small connection pool, and the runtime the connections live on.
//!
//! Each `tokio_postgres` connection is a future that must be polled for its client to make
//! progress. The pool opens and polls connections on a runtime of its own (one I/O thread),
//! so a [`PgStore`](super::PgStore) works from any runtime or thread and keeps working
//! after the runtime that opened it is gone, just like the SQLite store and its writer
//! thread. Clients talk to their connection over channels, so queries run on the caller's
//! runtime.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement, Transaction};

use super::Error;

/// Statements prepared on one connection, by SQL text: each is parsed once per connection,
/// and every later use is a single round trip.
pub type StatementCache = Mutex<HashMap<String, Statement>>;

/// At most `size` connections, opened on demand and reused while they are healthy.
pub struct Pool {
    config: Config,
    size: usize,
    io: IoRuntime,
    idle: Mutex<Vec<(Client, StatementCache)>>,
    slots: Semaphore,
}

/// A client borrowed from the pool; returned on drop unless its connection has closed.
pub struct PooledClient<'p> {
    client: Option<(Client, StatementCache)>,
    pool: &'p Pool,
    _slot: SemaphorePermit<'p>,
}

struct IoRuntime(Option<tokio::runtime::Runtime>);

impl Drop for IoRuntime {
    fn drop(&mut self) {
        // Never blocks, so a store may be dropped inside async code.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Pool {
    /// A pool of at most `size` connections to `config`. Opens nothing yet.
    pub fn new(config: Config, size: usize) -> Result<Pool, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ffrtmp-pg-io")
            .enable_all()
            .build()
            .map_err(|e| Error::backend(format!("cannot start the PostgreSQL I/O thread: {e}")))?;
        Ok(Pool {
            size: size.max(1),
            config,
            io: IoRuntime(Some(rt)),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(size.max(1)),
        })
    }

    /// Most connections open at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A healthy client: an idle one, or a new connection.
    pub async fn get(&self) -> Result<PooledClient<'_>, Error> {
        let slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Error::backend("the PostgreSQL pool is closed".into()))?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|(c, _)| !c.is_closed());
            idle.pop()
        };
        let client = match reused {
            Some(c) => c,
            None => (self.open().await?, StatementCache::default()),
        };
        Ok(PooledClient {
            client: Some(client),
            pool: self,
            _slot: slot,
        })
    }

    async fn open(&self) -> Result<Client, Error> {
        let config = self.config.clone();
        let rt = self.io.0.as_ref().expect("the I/O runtime lives as long as the pool");
        let target = describe(&self.config);
        rt.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %super::pg_message(&e), "PostgreSQL connection ended");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        })
        .await
        .map_err(|e| Error::backend(format!("PostgreSQL connect task failed: {e}")))?
        .map_err(|e| {
            Error::backend(format!(
                "cannot connect to PostgreSQL at {target}: {}",
                super::pg_message(&e)
            ))
        })
    }
}

impl PooledClient<'_> {
    /// The client and its statement cache.
    pub fn parts(&mut self) -> (&mut Client, &StatementCache) {
        let (client, cache) = self.client.as_mut().expect("client present until drop");
        (client, cache)
    }
}

impl Drop for PooledClient<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take().filter(|(c, _)| !c.is_closed()) {
            self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    }
}

/// The statement for `sql` prepared on `client`'s connection: from `cache`, or prepared now
/// and kept there.
pub async fn prepared(client: &Client, cache: &StatementCache, sql: &str) -> Result<Statement, tokio_postgres::Error> {
    let cached = cache.lock().unwrap_or_else(|p| p.into_inner()).get(sql).cloned();
    match cached {
        Some(s) => Ok(s),
        None => {
            let s = client.prepare(sql).await?;
            cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(sql.to_string(), s.clone());
            Ok(s)
        }
    }
}

/// A transaction whose statements come from the connection's cache.
pub struct Db<'a> {
    tx: Transaction<'a>,
    cache: &'a StatementCache,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl<'a> Db<'a> {
    pub fn new(tx: Transaction<'a>, cache: &'a StatementCache) -> Db<'a> {
        Db { tx, cache }
    }

    pub async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.tx.commit().await
    }

    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(sql).cloned();
        match cached {
            Some(s) => Ok(s),
            None => {
                let s = self.tx.prepare(sql).await?;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(sql.to_string(), s.clone());
                Ok(s)
            }
        }
    }

    pub async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.tx.query(&s, params).await
    }

    pub async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.tx.query_one(&s, params).await
    }

    pub async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.tx.query_opt(&s, params).await
    }

    pub async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.tx.execute(&s, params).await
    }
}

/// `user@host:port/dbname` for messages; never the password.
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("?"),
        if hosts.is_empty() {
            "localhost".into()
        } else {
            hosts.join(",")
        },
        config.get_dbname().unwrap_or(config.get_user().unwrap_or("?")),
    )
}
