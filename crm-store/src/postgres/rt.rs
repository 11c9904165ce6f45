//! Running sqlx's futures from any executor.
//!
//! sqlx's PostgreSQL driver runs on tokio: opening sockets, timeouts and returning connections to the
//! pool need a tokio runtime *context*, and socket readiness needs a tokio reactor that some thread
//! drives. A [`PgStore`](super::PgStore) therefore carries a runtime handle: its own runtime (one
//! worker thread, made by the blocking constructors) or the caller's (the async constructors). Every
//! future the store returns enters that runtime's context each time it is polled ([`InRuntime`]), so
//! the same future works when awaited on the runtime, on another tokio runtime, or driven by a plain
//! `block_on` (pollster) on a thread that has no runtime at all: the runtime's worker drives the
//! reactor and wakes the blocked thread.

use crm_core::error::{Error, Result};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::runtime::{Builder, Handle, Runtime};

/// The runtime a store's futures run in: owned (dropped with the store, without blocking) or borrowed.
pub(crate) struct Rt {
    handle: Handle,
    owned: Option<Runtime>,
}

impl fmt::Debug for Rt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rt").field("owned", &self.owned.is_some()).finish()
    }
}

impl Rt {
    /// A private multi-threaded runtime with one worker (which drives the reactor and the timers).
    pub(crate) fn owned() -> Result<Rt> {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("crm-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("postgres: cannot start the I/O runtime: {e}")))?;
        Ok(Rt {
            handle: rt.handle().clone(),
            owned: Some(rt),
        })
    }

    /// The runtime of the calling task.
    pub(crate) fn current() -> Result<Rt> {
        let handle = Handle::try_current().map_err(|_| {
            Error::internal("postgres: connect must be awaited inside a tokio runtime; use PgStore::open otherwise")
        })?;
        Ok(Rt { handle, owned: None })
    }

    pub(crate) fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Wraps a future so that it runs in this runtime's context whoever polls it.
    pub(crate) fn run<'a, T>(&self, f: impl Future<Output = T> + Send + 'a) -> InRuntime<'a, T> {
        InRuntime {
            handle: self.handle.clone(),
            fut: Some(Box::pin(f)),
        }
    }

    /// Runs a future to completion from synchronous code (constructors, drop). On an owned runtime;
    /// from a thread that is itself inside a runtime, on a helper thread (a runtime cannot block its
    /// own workers). Without an owned runtime, the future is spawned on the borrowed one and not
    /// waited for (`None`).
    pub(crate) fn block_on<T: Send>(&self, f: impl Future<Output = T> + Send) -> Option<T> {
        let rt = self.owned.as_ref()?;
        if Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join().ok())
        } else {
            Some(rt.block_on(f))
        }
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.owned.take() {
            // Never blocks, so dropping a store inside an async context is fine.
            rt.shutdown_background();
        }
    }
}

/// A future polled inside a runtime's context (see the module docs). Dropping it also happens in
/// that context, so a half-done query can hand its connection back to the pool.
pub(crate) struct InRuntime<'a, T> {
    handle: Handle,
    fut: Option<Pin<Box<dyn Future<Output = T> + Send + 'a>>>,
}

impl<T> fmt::Debug for InRuntime<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InRuntime").finish_non_exhaustive()
    }
}

impl<T> Future for InRuntime<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        let _ctx = this.handle.enter();
        match this.fut.as_mut() {
            Some(f) => {
                let out = f.as_mut().poll(cx);
                if out.is_ready() {
                    this.fut = None;
                }
                out
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for InRuntime<'_, T> {
    fn drop(&mut self) {
        if self.fut.is_some() {
            let _ctx = self.handle.enter();
            self.fut = None;
        }
    }
}
