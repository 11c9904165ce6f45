//! The due scheduler: wakes up every `--scheduler-interval` and asks the core what has fallen due
//! (follow-ups whose time has come, hot leads left untouched, memberships starting to expire) and
//! fires it ([`crm_core::service::Service::fire_due`]): each occurrence becomes one outbox event
//! (`lead.followup_due`, `lead.hot_untouched`, `membership.expiring`, ...) that event streams and
//! webhooks deliver like any other, to whoever may read the record. What is due, and that each
//! occurrence fires once (a due mark in the event's change set, unique per tenant), is the core's;
//! this task only keeps time.
//!
//! Every instance over one database runs it; per tenant, an instance first takes the tenant's
//! scheduler lease in the store ([`crm_core::service::Service::claim_scheduler`]), so one instance
//! at a time scans a tenant, and a dead instance's lease runs out after three intervals. A restart
//! fires nothing twice: the marks are in the database. See ADR 0009.
//!
//! Once an hour, under the same lease, it also removes the tenant's attachment bytes that no
//! attachment names and that are older than the core's grace
//! ([`crm_core::service::Service::collect_orphan_blobs`], ADR 0013).

use crate::state::{AppState, ServerStore};
use std::time::Duration;

/// Runs the scheduler until shutdown.
pub fn spawn<S: ServerStore>(app: AppState<S>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = app.shutdown.clone();
        let mut collected: Option<std::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let collect = collected.is_none_or(|at| at.elapsed() >= COLLECT_EVERY);
            if collect {
                collected = Some(std::time::Instant::now());
            }
            if let Err(e) = pass(&app, collect).await {
                tracing::warn!(error = ?e, "due scheduler pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(app.cfg.scheduler_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// How long a tenant's lease lasts: three intervals (at least 30 seconds), renewed every pass.
fn lease_secs(interval: Duration) -> i64 {
    (interval.as_secs() as i64).saturating_mul(3).max(30)
}

/// How often a scheduler collects orphan attachment bytes.
const COLLECT_EVERY: Duration = Duration::from_secs(3600);

/// One pass over every tenant whose lease this instance holds (with `collect`, also the tenant's
/// orphan attachment bytes).
async fn pass<S: ServerStore>(app: &AppState<S>, collect: bool) -> crate::error::ApiResult<()> {
    let tenants = app.run(|svc| async move { svc.tenants().await }).await?;
    let secs = lease_secs(app.cfg.scheduler_interval);
    for tenant in tenants {
        let holder = app.instance;
        if !app
            .run(move |svc| async move { svc.claim_scheduler(tenant, holder, secs).await })
            .await?
        {
            continue;
        }
        let fired = app.run(move |svc| async move { svc.fire_due(tenant).await }).await?;
        if !fired.is_empty() {
            tracing::info!(tenant = %tenant, fired = fired.len(), "due events fired");
            for item in &fired {
                app.metrics
                    .due_events
                    .get_or_create(&crate::metrics::KindLabels {
                        kind: item.event_kind(),
                    })
                    .inc();
            }
            app.written.notify_waiters();
        }
        if collect && app.svc.blob_store().is_some() {
            let grace = crm_core::entity::attachment::ORPHAN_GRACE_MICROS;
            let removed = app
                .run(move |svc| async move { svc.collect_orphan_blobs(tenant, grace).await })
                .await?;
            if removed > 0 {
                tracing::info!(tenant = %tenant, removed, "orphan attachment bytes collected");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlives_two_missed_passes() {
        assert_eq!(lease_secs(Duration::from_secs(60)), 180);
        assert_eq!(lease_secs(Duration::from_millis(500)), 30);
    }
}
