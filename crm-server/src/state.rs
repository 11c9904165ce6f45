//! What every request shares: the service, the settings, the token keys, the limiters and metrics.

use crate::auth::password::Hashing;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::Jwt;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crm_core::service::Service;
use crm_core::store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// A store the server can run on. Embedded stores (SQLite) do synchronous work inside their futures,
/// so the server runs their calls on the blocking pool and keeps the async workers free; natively
/// async stores (PostgreSQL) run on the workers.
pub trait ServerStore: Store + 'static {
    fn blocking(&self) -> bool;
    /// Database connections the store opened so far, where it counts them (`/metrics`).
    fn connections_opened(&self) -> Option<u64> {
        None
    }
}

impl ServerStore for crm_store::SqliteStore {
    fn blocking(&self) -> bool {
        true
    }
    fn connections_opened(&self) -> Option<u64> {
        Some(self.reader_connections_opened())
    }
}

impl ServerStore for crm_core::memory::MemoryStore {
    fn blocking(&self) -> bool {
        false
    }
}

impl ServerStore for crm_store::AnyStore {
    fn blocking(&self) -> bool {
        matches!(self, crm_store::AnyStore::Sqlite(_))
    }
    fn connections_opened(&self) -> Option<u64> {
        crm_store::AnyStore::connections_opened(self)
    }
}

impl<S: ServerStore> ServerStore for Arc<S> {
    fn blocking(&self) -> bool {
        (**self).blocking()
    }
    fn connections_opened(&self) -> Option<u64> {
        (**self).connections_opened()
    }
}

pub type AppState<S> = Arc<App<S>>;

/// Shared state of a running server.
#[derive(Debug)]
pub struct App<S> {
    pub svc: Arc<Service<S>>,
    pub cfg: Config,
    pub jwt: Jwt,
    pub hashing: Hashing,
    pub throttle: Throttle,
    pub metrics: Metrics,
    /// Woken after every write this instance makes (event streams, webhooks); other instances'
    /// writes are found by polling.
    pub written: Notify,
    /// Flips to `true` when the server starts shutting down (ends event streams so draining finishes).
    pub shutdown: watch::Receiver<bool>,
    /// This server instance, as the holder of its webhook delivery claims.
    pub instance: crm_core::value::Id,
    blocking: bool,
}

impl<S: ServerStore> App<S> {
    pub fn new(svc: Service<S>, cfg: Config, shutdown: watch::Receiver<bool>) -> App<S> {
        App {
            blocking: svc.store().blocking(),
            jwt: Jwt::new(&cfg.jwt_secret),
            hashing: Hashing::new(cfg.max_hashing),
            throttle: Throttle::new(cfg.login_failures, cfg.login_window),
            metrics: Metrics::default(),
            written: Notify::new(),
            svc: Arc::new(svc.with_caller_cache(cfg.auth_cache).with_org_cache(cfg.org_cache)),
            cfg,
            shutdown,
            instance: crm_core::value::Id::now_v7(),
        }
    }

    /// Runs a use case: on the blocking pool for embedded stores, inline for async ones.
    pub async fn run<T, F, Fut>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(Arc<Service<S>>) -> Fut + Send + 'static,
        Fut: Future<Output = crm_core::error::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let svc = self.svc.clone();
        let out = if self.blocking {
            tokio::task::spawn_blocking(move || pollster::block_on(f(svc)))
                .await
                .map_err(|_| ApiError::Unavailable(1))?
        } else {
            f(svc).await
        };
        out.map_err(ApiError::from)
    }

    /// Runs a use case made only of reads by key (a record by id and its children) inline on the
    /// async worker, whatever the store. For SQLite, handing such a read to the blocking pool and
    /// back (a thread woken each way) cost more than the read: about a quarter of a GET's server
    /// CPU in a profile. Inline is safe because such a read is short and never waits: WAL readers
    /// do not wait for the writer, and a reader connection is opened when every open one is busy.
    /// Lists, searches, reports and writes, whose cost grows with the data, go through [`App::run`].
    pub async fn read_by_key<T, F, Fut>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(Arc<Service<S>>) -> Fut,
        Fut: Future<Output = crm_core::error::Result<T>>,
    {
        f(self.svc.clone()).await.map_err(ApiError::from)
    }

    /// Like [`App::run`] for a write: refused (503) if the request timed out before it started, never
    /// cut by the timeout once started (see [`crate::middleware::shed`]); wakes event streams and
    /// webhook delivery afterwards.
    pub async fn write<T, F, Fut>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(Arc<Service<S>>) -> Fut + Send + 'static,
        Fut: Future<Output = crm_core::error::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        if !crate::middleware::write_may_start() {
            return Err(ApiError::Unavailable(1));
        }
        let out = self.run(f).await;
        if out.is_ok() {
            self.written.notify_waiters();
        }
        out
    }

    pub fn now_s(&self) -> i64 {
        self.svc.now().0.div_euclid(1_000_000)
    }
}
