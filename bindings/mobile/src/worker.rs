//! Off the caller's thread. The store is blocking SQLite and the core's use cases are futures that
//! complete without waiting on anything but the store, so each exported `async` call runs its
//! whole use case on a worker thread of its own (`pollster::block_on` there) and hands the result
//! back through a one-shot channel. The foreign side (a Kotlin coroutine, a Swift task, Python's
//! asyncio) polls only the channel: it never waits for SQLite on its own thread.
//!
//! Cancellation: uniffi drops the Rust future when the caller goes away (Kotlin frees it when the
//! coroutine is cancelled). A call whose work has not started yet is then skipped; one already
//! running finishes its use case (one transaction: all or nothing) and its result is dropped. So a
//! cancelled coroutine that pages through a list stops between pages.

use crate::error::CrmError;
use futures_channel::oneshot;

/// Runs `work` on a new thread and awaits its result; never blocks the polling thread. A panic in
/// `work` is reported as a `Storage` error (`internal`), never unwound across the FFI.
pub(crate) async fn unblock<T, F>(work: F) -> Result<T, CrmError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CrmError> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("crm-mobile-call".into())
        .spawn(move || {
            // The caller dropped the call (a cancelled coroutine) before it started: skip it.
            if tx.is_canceled() {
                return;
            }
            // Nobody listening any more is fine: the result is dropped.
            let _ = tx.send(work());
        })
        .map_err(|e| {
            CrmError::from(crm_core::Error::unavailable(
                1,
                format!("cannot start a worker thread: {e}"),
            ))
        })?;
    match rx.await {
        Ok(result) => result,
        // The sender is dropped without sending only when `work` panicked (the thread unwound).
        Err(oneshot::Canceled) => Err(crm_core::Error::internal("the call's worker thread panicked").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn the_result_comes_back_from_another_thread() {
        let caller = std::thread::current().id();
        let ran_on = pollster::block_on(unblock(|| Ok(std::thread::current().id()))).expect("ran");
        assert_ne!(ran_on, caller, "the work ran on a worker thread");
    }

    #[test]
    fn a_panic_is_an_internal_error_not_an_unwind() {
        let r: Result<(), CrmError> = pollster::block_on(unblock(|| panic!("boom")));
        match r {
            Err(CrmError::Storage { code, detail }) => {
                assert_eq!(code, "internal");
                assert!(!detail.contains("boom"), "the cause stays inside: {detail}");
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    #[test]
    fn a_dropped_call_lets_running_work_finish_and_drops_its_result() {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&finished);
        let mut call = Box::pin(unblock(move || {
            started_tx.send(()).expect("started");
            go_rx.recv().expect("go");
            f.store(true, Ordering::SeqCst);
            Ok(1)
        }));
        // First poll: the worker starts; the call is pending until it answers.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(call.as_mut().poll(&mut cx).is_pending());
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the worker started");
        drop(call); // the caller goes away (a cancelled coroutine)
        go_tx.send(()).expect("go");
        for _ in 0..1000 {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the running work did not finish after its caller went away");
    }
}
