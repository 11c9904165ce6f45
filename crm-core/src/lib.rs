//! # crm-core
//!
//! The CRM's rules, once: the data model (entity declarations, one module per aggregate in [`entity`]), validation and normalisation, access
//! control, lead scoring, queries, CSV import and export, audit and events, and the [`service::Service`]
//! that runs every use case over a pluggable [`store::Store`].
//!
//! The crate is pure: no I/O, no async runtime, no database driver; time and ids come in through
//! [`clock::Clock`] and [`clock::IdGen`]. It builds for `wasm32-unknown-unknown`.
//!
//! ```
//! use crm_core::{memory::MemoryStore, service::Service, clock::{FixedClock, SeqIds}, value::Timestamp};
//! use std::sync::Arc;
//! # pollster::block_on(async {
//! let svc = Service::new(MemoryStore::new(), Arc::new(FixedClock::new(Timestamp(1_700_000_000_000_000))), Arc::new(SeqIds::default()));
//! let org = svc.create_organization(serde_json::json!({"name": "Acme Roofing"}).as_object().unwrap()).await.unwrap();
//! let admin = crm_core::access::Actor::system(org.id);
//! let lead = svc.create(&admin, "lead", serde_json::json!({"first_name": "Ann", "source": "referral"}).as_object().unwrap()).await.unwrap();
//! assert_eq!(lead.str("status"), Some("new"));
//! # });
//! ```

pub mod access;
pub mod address;
pub mod analytics;
pub mod blob;
pub mod change;
pub mod clock;
pub mod computed;
pub mod decimal;
pub mod delivery;
pub mod demo;
pub mod due;
pub mod entity;
pub mod error;
pub mod idempotency;
pub mod memory;
pub mod pipeline;
pub mod progress;
pub mod query;
pub mod record;
pub mod schema;
pub mod scoring;
pub mod service;
pub mod store;
pub mod sync;
pub mod tenant;
pub mod validate;
pub mod value;
pub mod workflow;

pub use error::{Error, FieldError, Result};

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

#[cfg(test)]
mod proptests;

/// The in-memory store runs the same conformance suite as every other backend.
#[cfg(test)]
mod memory_conformance {
    crate::conformance_tests!(crate::memory::MemoryStore::new, sync_log: || {
        crate::memory::MemoryStore::new().with_sync_log(true)
    });

    /// Two handles of one in-memory database: two references to one store.
    #[test]
    fn due_events_fire_once_from_two_instances() {
        let store = std::sync::Arc::new(crate::memory::MemoryStore::new());
        crate::conformance::due_events_fire_once_from_two_instances(store.clone(), store);
    }

    #[test]
    fn configuration_changes_reach_the_next_write_of_every_instance() {
        let store = std::sync::Arc::new(crate::memory::MemoryStore::new());
        crate::conformance::configuration_changes_reach_the_next_write_of_every_instance(store.clone(), store);
    }
}
