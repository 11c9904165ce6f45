//! The device side of sync: reading and acknowledging the local change-set log ([`crate::sync`]).

use super::Service;
use crate::access::Actor;
use crate::error::Result;
use crate::store::Store;
use crate::sync::SyncEntry;

/// Most entries one [`Service::pending_changes`] call returns.
pub const MAX_SYNC_BATCH: u32 = 1000;

impl<S: Store> Service<S> {
    /// The tenant's change sets logged on this device and not yet marked synced, with `seq >
    /// after_seq`, oldest first, at most `limit` (capped at [`MAX_SYNC_BATCH`]). Empty unless the
    /// store was opened with its sync log on.
    ///
    /// Any active user of the tenant may read and acknowledge the log: it is the device's outgoing
    /// queue, handed unredacted to the uploader because a server must replay it exactly, and the
    /// server authorizes each change set as its own actor when it replays it. (The redacted view of
    /// what changed is [`Service::events_since`].)
    pub async fn pending_changes(&self, actor: &Actor, after_seq: u64, limit: u32) -> Result<Vec<SyncEntry>> {
        self.store
            .pending_changes(actor.tenant, after_seq, limit.clamp(1, MAX_SYNC_BATCH))
            .await
    }

    /// Removes the entries with `seq <= up_to_seq` once a server has acknowledged them; returns how
    /// many were removed. Idempotent.
    pub async fn mark_synced(&self, actor: &Actor, up_to_seq: u64) -> Result<u64> {
        self.store.mark_synced(actor.tenant, up_to_seq).await
    }
}
