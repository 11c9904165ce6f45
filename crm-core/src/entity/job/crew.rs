//! A job's crew: children of the job naming a user, their role on the job and the time they are
//! booked for it. A user holds one assignment at a time: the ranges are exclusive per user
//! ([`crate::schema::Exclusive`]), checked by the core against every store's rows and safe against
//! two concurrent writers. Whoever is on a job's crew has the job in their own scope.

use super::{SINCE, declare};
use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{ChildOf, EntityDef, Exclusive, FieldDef as F};
use crate::value::{FieldType as T, Value};

declare!(CREW_ASSIGNMENT, crew_assignment);

/// Field names of a crew assignment.
pub mod fields {
    pub const JOB_ID: &str = "job_id";
    pub const USER_ID: &str = "user_id";
    /// The user's role on this job: driver, mover, foreman, roofer, ... (the tenant's words).
    pub const ROLE: &str = "role";
    pub const STARTS_AT: &str = "starts_at";
    pub const ENDS_AT: &str = "ends_at";
}
use fields::*;

fn crew_assignment() -> EntityDef {
    let mut e = EntityDef::new("crew_assignment", "crew_assignments")
        .field(F::new(JOB_ID, T::Ref("job")).required())
        .field(F::new(USER_ID, T::Ref("user")).required())
        .field(F::new(ROLE, T::Text).required().max_len(50))
        .field(F::new(STARTS_AT, T::Timestamp).required())
        .field(F::new(ENDS_AT, T::Timestamp).required());
    e.since = SINCE;
    e.child_of = Some(ChildOf {
        parent: "job",
        field: JOB_ID,
        order_by: &[STARTS_AT],
    });
    e.exclusive = Some(Exclusive {
        key: USER_ID,
        start: STARTS_AT,
        end: ENDS_AT,
        of: "user",
        free_when: None,
        occurrences: None,
        warn: None,
    });
    e.check = Some(range_in_order);
    e.indexes = vec![&[JOB_ID, STARTS_AT], &[USER_ID, STARTS_AT]];
    e
}

fn range_in_order(r: &Record, errs: &mut Vec<FieldError>) {
    if let (Some(Value::Timestamp(s)), Some(Value::Timestamp(e))) = (r.get(STARTS_AT), r.get(ENDS_AT))
        && e <= s
    {
        errs.push(FieldError::new(
            ENDS_AT,
            codes::TOO_SMALL,
            "an assignment ends after it starts",
        ));
    }
}
