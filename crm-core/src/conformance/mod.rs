//! The store conformance suite. Every backend runs it through the full service:
//!
//! ```ignore
//! crm_core::conformance_tests!(|| MyStore::open_temporary().unwrap());
//! ```
//!
//! Each case builds a fresh tenant (a roofing company with a user of each role) on a fresh store with
//! a pinned clock, then checks one behaviour the product promises.
//!
//! A store that offers the local change-set log ([`crate::sync`]) also passes a constructor of stores
//! with the log on, which adds the sync log cases:
//!
//! ```ignore
//! crm_core::conformance_tests!(|| MyStore::open_temporary().unwrap(),
//!     sync_log: || MyStore::open_temporary().unwrap().with_sync_log(true));
//! ```
//!
//! The cases live in one file per area (records, access, queries, compliance, transfer, leads, auth,
//! memberships, stages, reports, routing, follow-ups, jobs, appointments, upserts, sync log) and are re-exported here, where the macro finds them as `$crate::conformance::<case>`.

#![allow(clippy::unwrap_used, clippy::type_complexity, missing_docs)]

mod access;
mod aggregates;
mod appointments;
mod attachments;
mod auth;
mod compliance;
mod declarations;
mod followups;
mod jobs;
mod leads;
mod memberships;
mod queries;
mod quotes;
mod records;
mod reports;
mod routing;
mod stages;
mod sync_log;
mod sync_provision;
mod sync_pull;
mod sync_push;
#[cfg(any(test, feature = "sync-simulation"))]
mod sync_simulation;
mod transfer;
mod upserts;

pub use access::*;
pub use aggregates::*;
pub use appointments::*;
pub use attachments::*;
pub use auth::*;
pub use compliance::*;
pub use declarations::*;
pub use followups::*;
pub use jobs::*;
pub use leads::*;
pub use memberships::*;
pub use queries::*;
pub use quotes::*;
pub use records::*;
pub use reports::*;
pub use routing::*;
pub use stages::*;
pub use sync_log::*;
pub use sync_provision::*;
pub use sync_pull::*;
pub use sync_push::*;
#[cfg(any(test, feature = "sync-simulation"))]
pub use sync_simulation::*;
pub use transfer::*;
pub use upserts::*;

use crate::access::Actor;
use crate::clock::{FixedClock, SeqIds};
use crate::entity;
use crate::error::Error;
use crate::query::{Filter, ListRequest};
use crate::record::Record;
use crate::service::Service;
use crate::store::{AuditQuery, Store};
use crate::value::{Id, Timestamp};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;

/// Generates one `#[test]` per conformance case for a store constructor expression. The cases are
/// listed by area, one list per file of this module.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        // records.rs
        $crate::__conformance_cases!($make;
            create_get_round_trip, validation_reports_every_field_and_writes_nothing, stale_version_is_a_conflict,
            bulk_session_rolls_back_on_drop, bulk_ids_answer_what_queries_find, unique_fields_are_enforced, delete_refuses_records_in_use,
            derived_writes_skip_moved_rows);
        // access.rs
        $crate::__conformance_cases!($make;
            other_tenants_ids_are_not_found, field_tech_sees_only_assigned_records, staff_may_update_only_notes,
            sales_cannot_read_other_teams_leads, hidden_fields_are_absent_and_rejected_in_filters,
            the_last_active_admin_stays);
        // queries.rs
        $crate::__conformance_cases!($make;
            keyset_pages_are_complete_and_ordered, store_filters_match_in_memory_evaluation,
            query_errors_point_at_the_term, custom_fields_filter_and_sort_by_their_type);
        // aggregates.rs
        $crate::__conformance_cases!($make;
            aggregates_group_measure_and_keep_nulls_apart, aggregates_bucket_time_at_an_offset,
            aggregates_count_only_the_readers_scope);
        // compliance.rs
        $crate::__conformance_cases!($make;
            audit_chain_verifies_with_old_and_new_values, events_are_sequenced_and_filtered,
            integrity_checker_reports_broken_rows, audit_and_events_stay_inside_the_read_scope,
            audit_head_follows_every_append);
        // transfer.rs
        $crate::__conformance_cases!($make;
            import_dry_run_reports_rows_and_fields, import_modes_and_upsert, export_is_formula_safe_and_redacted);
        // leads.rs
        $crate::__conformance_cases!($make;
            convert_lead_in_one_change_set, pipeline_summary_counts_by_stage, activities_rescore_their_lead,
            decayed_score_explained_and_models_published);
        // auth.rs
        $crate::__conformance_cases!($make;
            sessions_keys_and_secrets, webhooks_refuse_internal_addresses, webhook_claims_are_exclusive_until_they_expire,
            webhooks_receive_what_their_creator_may_read,
            idempotency_keys_replay_refuse_and_expire);
        // sync_pull.rs
        $crate::__conformance_cases!($make;
            pull_snapshot_in_pages_equals_what_the_user_may_read,
            pulls_bring_updates_deletes_and_records_leaving_the_scope,
            pulls_are_redacted_and_reset_when_the_users_access_changes);
        // sync_log.rs: the one case for stores without the log
        $crate::__conformance_cases!($make; sync_log_is_off_by_default);
        // declarations.rs: workflows, computed fields, children
        $crate::__conformance_cases!($make;
            workflow_transitions_are_guarded_and_atomic, computed_fields_filter_and_sort_as_they_evaluate,
            children_are_written_scoped_and_deleted_with_their_parent, child_batches_are_one_change_set);
        // quotes.rs
        $crate::__conformance_cases!($make;
            quote_totals_follow_the_policy_and_read_back_exactly, quote_approval_cannot_be_bypassed,
            quote_revisions_and_lifetime_value);
        // memberships.rs
        $crate::__conformance_cases!($make;
            membership_statuses_on_their_boundary_days, check_in_policy_decides_and_writes_only_what_it_logs,
            renewals_and_freezes_keep_the_client_standing, kiosk_and_staff_keep_to_the_front_desk,
            imported_memberships_derive_the_clients_standing, refreshing_many_clients_reads_their_memberships_in_pages);
        // stages.rs
        $crate::__conformance_cases!($make;
            stage_changes_are_recorded_with_their_write, imports_record_stage_changes_in_their_chunk,
            stage_changes_are_read_with_their_records_scope);
        // reports.rs
        $crate::__conformance_cases!($make;
            reports_count_only_the_readers_scope, activity_cohort_map_and_value_reports_keep_to_the_readers_scope);
        // routing.rs
        $crate::__conformance_cases!($make;
            routing_rules_decide_by_each_strategy, round_robin_is_fair_under_concurrent_creates,
            routing_backtest_spreads_past_leads_by_todays_rules);
        // followups.rs (the two-instance cases need two handles of one database: each backend's
        // test file calls `due_events_fire_once_from_two_instances` and
        // `round_robin_is_fair_across_two_instances` itself)
        $crate::__conformance_cases!($make;
            followups_are_computed_views_set_by_activities, imported_activities_set_follow_ups_as_logged_ones,
            my_followups_are_what_the_user_owes_due_today_or_overdue,
            untouched_hot_leads_are_a_view_and_fall_due_once, due_events_fire_once_and_only_to_readers);
        // jobs.rs
        $crate::__conformance_cases!($make;
            job_steps_keep_their_order_and_the_core_stamps_them, job_guards_refuse_with_nothing_written,
            crew_double_booking_is_refused_even_between_racing_writers,
            field_tech_sees_only_jobs_they_are_assigned_to, my_day_and_the_board_show_each_reader_their_part,
            a_job_is_made_once_from_an_accepted_quote);
        // appointments.rs
        $crate::__conformance_cases!($make;
            appointments_recur_in_their_zone_and_show_in_my_day, appointment_overlaps_are_refused_or_warned_by_policy,
            calendar_feeds_are_revocable_and_read_as_their_user);
        // attachments.rs
        $crate::__conformance_cases!($make;
            attachments_are_stored_once_and_checked_against_their_content,
            interrupted_uploads_leave_nothing_and_orphan_blobs_are_collected,
            attachments_take_their_owners_scope, deleting_the_owner_deletes_its_attachments,
            a_signature_attachment_signs_the_job);
        // upserts.rs
        $crate::__conformance_cases!($make;
            upserting_the_same_batch_twice_writes_nothing, upsert_modes_refuse_what_they_must_per_row,
            two_systems_with_one_external_id_do_not_collide, upserts_keep_to_the_callers_scope_and_writable_fields,
            an_all_or_nothing_upsert_with_one_bad_row_writes_nothing, upserted_appointments_keep_the_overlap_check,
            a_job_comes_with_its_steps_from_the_scheduler);
    };
    ($make:expr, sync_log: $logged:expr $(,)?) => {
        $crate::conformance_tests!($make);
        // sync_log.rs
        $crate::__conformance_cases!($logged;
            sync_log_records_change_sets_in_order, failed_change_sets_log_nothing,
            mark_synced_removes_entries_up_to_a_seq, sync_log_is_per_tenant,
            bulk_sessions_log_per_change_set_and_rollbacks_log_nothing);
        // sync_push.rs: a server store and a device store
        #[test]
        fn sync_push_replays_merges_and_converges() {
            $crate::conformance::sync_push_replays_merges_and_converges(($make)(), ($logged)());
        }
        #[test]
        fn a_new_device_starts_from_a_provision() {
            $crate::conformance::a_new_device_starts_from_a_provision(($make)(), ($logged)());
        }
        #[test]
        fn attachments_made_offline_go_up_with_their_bytes() {
            $crate::conformance::attachments_made_offline_go_up_with_their_bytes(($make)(), ($logged)());
        }
        #[test]
        fn sync_push_replays_conversions() {
            $crate::conformance::sync_push_replays_conversions(($make)(), ($logged)());
        }
        // sync_simulation.rs: one server store, four device stores, random schedules (needs
        // crm-core's `sync-simulation` feature)
        #[test]
        fn sync_simulation_converges() {
            let (server, device) = ($make, $logged);
            $crate::conformance::sync_simulation_converges(server, device);
        }
        #[test]
        fn replay_answers_land_with_their_writes() {
            $crate::conformance::replay_answers_land_with_their_writes(($make)(), ($logged)());
        }
        // declarations.rs: derived fields stay out of the log
        $crate::__conformance_cases!($logged; derived_fields_are_recomputed_and_not_synced);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(($make)());
            }
        )*
    };
}

/// 2025-06-01T12:00:00Z
pub const NOW: Timestamp = Timestamp(1_748_779_200_000_000);

/// A tenant with a user of each built-in role on two teams.
#[allow(missing_debug_implementations)]
pub struct Fixture<S> {
    pub svc: Service<S>,
    pub clock: Arc<FixedClock>,
    pub tenant: Id,
    pub admin: Actor,
    pub manager: Actor,
    pub sales_a: Actor,
    pub sales_b: Actor,
    pub tech: Actor,
    pub staff: Actor,
}

pub fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap_or_default()
}

pub fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

impl<S: Store> Fixture<S> {
    pub fn new(store: S) -> Self {
        Self::with_ids(store, Arc::new(SeqIds::default()))
    }

    /// [`Fixture::new`] with the service's ids from `ids`.
    pub fn with_ids(store: S, ids: Arc<dyn crate::clock::IdGen>) -> Self {
        let clock = Arc::new(FixedClock::new(NOW));
        let svc = Service::new(store, clock.clone(), ids);
        block(async {
            let org = svc
                .create_organization(&obj(json!({"name": "Acme Roofing"})))
                .await
                .unwrap();
            let tenant = org.id;
            let admin = Actor::system(tenant);
            let team_a = svc
                .create(&admin, "team", &obj(json!({"name": "North"})))
                .await
                .unwrap()
                .id;
            let team_b = svc
                .create(&admin, "team", &obj(json!({"name": "South"})))
                .await
                .unwrap()
                .id;
            let user = async |name: &str, role: &str, team: Id| {
                let u = svc
                    .create(&admin, "user", &obj(json!({"name": name, "email": format!("{name}@acme.test"), "role": role, "team_id": team.to_string()})))
                    .await
                    .unwrap();
                svc.actor(tenant, u.id).await.unwrap()
            };
            let manager = user("maria", "manager", team_a).await;
            let sales_a = user("sam", "sales", team_a).await;
            let sales_b = user("sue", "sales", team_b).await;
            let tech = user("tom", "field_tech", team_a).await;
            let staff = user("stan", "staff", team_a).await;
            Fixture {
                svc,
                clock,
                tenant,
                admin,
                manager,
                sales_a,
                sales_b,
                tech,
                staff,
            }
        })
    }

    /// The same tenant with attachment bytes going to `blobs`.
    pub fn with_blobs(mut self, blobs: Arc<dyn crate::blob::BlobStore>) -> Self {
        self.svc = self.svc.with_blob_store(blobs);
        self
    }

    /// Changes the tenant's settings (its organization record) as the system.
    pub fn set_org(&self, patch: Json) -> Record {
        let org = block(self.svc.get(&self.admin, "organization", self.tenant)).unwrap();
        block(
            self.svc
                .update(&self.admin, "organization", self.tenant, org.version, &obj(patch)),
        )
        .unwrap()
    }

    pub fn lead(&self, actor: &Actor, input: Json) -> Record {
        block(self.svc.create(actor, "lead", &obj(input))).unwrap()
    }

    pub fn ids(&self, actor: &Actor, entity: &str, q: &str) -> Vec<Id> {
        let req = ListRequest {
            q: Some(q.into()),
            limit: Some(500),
            ..Default::default()
        };
        block(self.svc.list(actor, entity, &req))
            .unwrap()
            .items
            .iter()
            .map(|r| r.id)
            .collect()
    }

    fn count(&self, entity: &str) -> u64 {
        block(
            self.svc
                .store()
                .count(self.tenant, entity::entity(entity).unwrap(), &Filter::All),
        )
        .unwrap()
    }

    fn writes_seen(&self) -> (usize, usize) {
        let audit = block(self.svc.store().audit(
            self.tenant,
            &AuditQuery {
                limit: u32::MAX,
                ..Default::default()
            },
        ))
        .unwrap();
        let events = block(self.svc.store().events(self.tenant, 0, u32::MAX)).unwrap();
        (audit.len(), events.len())
    }
}

fn codes_of(e: &Error) -> Vec<(String, String)> {
    e.field_errors()
        .iter()
        .map(|f| (f.path.clone(), f.code.clone()))
        .collect()
}

/// A deterministic v7 id for records written straight to the store.
pub fn fixed_id(n: u64) -> Id {
    let mut rand = [0u8; 10];
    rand[0] = 0xfe;
    rand[2..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(NOW.as_millis() as u64, &rand).into_uuid()
}
