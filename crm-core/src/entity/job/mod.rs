//! Jobs: field work for a customer at an address on a scheduled day, made of ordered steps
//! ([`step`]) and done by a crew ([`crew`]). A roofing company's project and a moving crew's journey
//! are both jobs (their `kind`); a tenant's standard step lists per job type are data
//! ([`template`]), applied when a job is created without steps.
//!
//! States: `planned` → dispatch → `dispatched` → start → `in_progress` → complete → `completed`;
//! cancel from any open state → `cancelled` (with a reason). A job cannot start without a crew,
//! nor complete while a required step is open, nor without the customer's signature when it
//! requires one (a signature attachment: [`crate::entity::attachment`]). Completed and cancelled
//! jobs are locked, with their steps, crew and activities.
//!
//! What the guards read is derived from the children in the change set of every child write:
//! progress (steps done or skipped over steps), the required steps still open, the crew size and
//! the crew's user ids. The last makes a crew member's "own" scope reach the job
//! ([`crate::schema::EntityDef::assignees_field`]), and through it its steps and activities.
//!
//! A job can be made from an accepted quote ([`from_quote`]): for the quote's customer, with its
//! total as the budget; a quote has at most one job that is not cancelled.

pub mod crew;
pub mod from_quote;
pub mod step;
pub mod template;

use super::{EntityRules, Need, WriteCtx, address, declare, keyed_enum};
use crate::access::Action;
use crate::computed::ComputeCtx;
use crate::error::{Error, FieldError, Result, codes};
use crate::record::Record;
use crate::schema::{EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Value};
use crate::workflow::{GuardCtx, Refusal, Stamp, Transition, Workflow};
use serde_json::{Map, Value as Json};

pub use crew::CREW_ASSIGNMENT;
pub use step::{JOB_STEP, STEP_ACTIVITY};
pub use template::JOB_TEMPLATE;

declare!(JOB, job);

/// The schema version that added jobs, their steps, crews, activities and templates.
pub const SINCE: u32 = 11;

keyed_enum!(
    /// What a job is: a roofing project or a moving journey.
    JobKind {
        Project = "project",
        Journey = "journey",
    }
);

keyed_enum!(
    /// A job's state (see the module docs).
    JobStatus {
        Planned = "planned",
        Dispatched = "dispatched",
        InProgress = "in_progress",
        Completed = "completed",
        Cancelled = "cancelled",
    }
);

/// Field names of a job.
pub mod fields {
    pub const KIND: &str = "kind";
    pub const TITLE: &str = "title";
    /// The key of the tenant's job template whose steps a new job gets ([`super::template`]).
    pub const JOB_TYPE: &str = "job_type";
    pub const CONTACT_ID: &str = "contact_id";
    pub const COMPANY_ID: &str = "company_id";
    pub const LOCATION_ID: &str = "location_id";
    /// The quote the job was made from (read-only: see [`super::from_quote`]).
    pub const QUOTE_ID: &str = "quote_id";
    pub const SCHEDULED_ON: &str = "scheduled_on";
    pub const WINDOW_START: &str = "window_start";
    pub const WINDOW_END: &str = "window_end";
    /// The truck or equipment the job uses.
    pub const VEHICLE: &str = "vehicle";
    pub const BUDGET: &str = "budget";
    pub const ACTUAL_COST: &str = "actual_cost";
    pub const NOTES: &str = "notes";
    pub const SIGNATURE_REQUIRED: &str = "signature_required";
    /// The customer has signed: derived, true while the job has a signature attachment
    /// ([`crate::entity::attachment`]); what the completion guard reads.
    pub const CUSTOMER_SIGNED: &str = "customer_signed";
    pub const STATUS: &str = "status";
    pub const DISPATCHED_AT: &str = "dispatched_at";
    pub const STARTED_AT: &str = "started_at";
    pub const COMPLETED_AT: &str = "completed_at";
    pub const COMPLETED_BY: &str = "completed_by";
    pub const CANCELLED_AT: &str = "cancelled_at";
    pub const CANCEL_REASON: &str = "cancel_reason";
    /// Derived from the steps.
    pub const STEP_COUNT: &str = "step_count";
    pub const STEPS_FINISHED: &str = "steps_finished";
    /// Whole percent of the steps done or skipped (0 without steps).
    pub const PROGRESS: &str = "progress";
    pub const REQUIRED_OPEN: &str = "required_open";
    /// Derived from the crew.
    pub const CREW_COUNT: &str = "crew_count";
    pub const CREW_USER_IDS: &str = "crew_user_ids";
}
use fields::*;

fn job() -> EntityDef {
    let derived_count = |name| F::new(name, T::Integer).derived().default(0i64);
    let e = EntityDef::new("job", "jobs")
        .field(F::new(KIND, T::Enum).options(JobKind::KEYS).required())
        .field(F::new(TITLE, T::Text).required().max_len(200))
        .field(F::new(JOB_TYPE, T::Text).max_len(64))
        .field(F::new(CONTACT_ID, T::Ref("contact")))
        .field(F::new(COMPANY_ID, T::Ref("company")))
        .field(F::new(LOCATION_ID, T::Ref("location")))
        // Set only when the job is made from its quote ([`from_quote`]).
        .field(F::new(QUOTE_ID, T::Ref("quote")).read_only())
        .field(F::new("owner_id", T::Ref("user")))
        .field(F::new("team_id", T::Ref("team")))
        .field(F::new("external_id", T::Text).max_len(100).unique())
        .field(F::new(SCHEDULED_ON, T::Date))
        .field(F::new(WINDOW_START, T::Timestamp))
        .field(F::new(WINDOW_END, T::Timestamp))
        .field(F::new(VEHICLE, T::Text).max_len(100))
        .field(F::new(BUDGET, T::Money).range(Some(0), None))
        .field(F::new(ACTUAL_COST, T::Money).range(Some(0), None))
        .field(F::new(NOTES, T::Text).max_len(10_000))
        .field(F::new(SIGNATURE_REQUIRED, T::Bool).required().default(false))
        // Derived from the job's signature attachments since schema version 13 (a declared field before).
        .field(F::new(CUSTOMER_SIGNED, T::Bool).required().default(false).derived())
        .field(
            F::new(STATUS, T::Enum)
                .options(JobStatus::KEYS)
                .read_only()
                .default(JobStatus::Planned.key()),
        )
        .field(F::new(DISPATCHED_AT, T::Timestamp).read_only())
        .field(F::new(STARTED_AT, T::Timestamp).read_only())
        .field(F::new(COMPLETED_AT, T::Timestamp).read_only())
        .field(F::new(COMPLETED_BY, T::Ref("user")).read_only())
        .field(F::new(CANCELLED_AT, T::Timestamp).read_only())
        .field(F::new(CANCEL_REASON, T::Text).max_len(2000).read_only())
        .field(derived_count(STEP_COUNT))
        .field(derived_count(STEPS_FINISHED))
        .field(derived_count(PROGRESS))
        .field(derived_count(REQUIRED_OPEN))
        .field(derived_count(CREW_COUNT))
        .field(F::new(CREW_USER_IDS, T::Tags).derived());
    let mut e = address(e);
    super::scoped(&mut e);
    e.assignees_field = Some(CREW_USER_IDS);
    e.since = SINCE;
    e.rules = &JobRules;
    e.search_fields = &[TITLE, "address_line", "city", VEHICLE];
    e.check = Some(check_job);
    e.indexes = vec![&[SCHEDULED_ON, STATUS], &[STATUS, SCHEDULED_ON], &[CONTACT_ID]];
    e.workflow = Some(&JOB_WORKFLOW);
    e.attachments = Some(crate::schema::Attachments {
        signed: Some(CUSTOMER_SIGNED),
    });
    e
}

/// The job lifecycle (see the module docs).
pub static JOB_WORKFLOW: Workflow = Workflow {
    field: STATUS,
    locked: &["completed", "cancelled"],
    reenter_on_edit: None,
    create_stamps: &[],
    transitions: &[
        Transition {
            stamps: &[(DISPATCHED_AT, Stamp::Now)],
            guard: Some(scheduled),
            ..Transition::new(
                "dispatch",
                Action::Update,
                &["planned"],
                Some("dispatched"),
                "job.dispatched",
            )
        },
        Transition {
            stamps: &[(STARTED_AT, Stamp::Now)],
            guard: Some(has_crew),
            ..Transition::new(
                "start",
                Action::Start,
                &["planned", "dispatched"],
                Some("in_progress"),
                "job.started",
            )
        },
        Transition {
            stamps: &[(COMPLETED_AT, Stamp::Now), (COMPLETED_BY, Stamp::Actor)],
            guard: Some(completable),
            ..Transition::new(
                "complete",
                Action::Complete,
                &["in_progress"],
                Some("completed"),
                "job.completed",
            )
        },
        Transition {
            stamps: &[(CANCELLED_AT, Stamp::Now)],
            accepts: &[CANCEL_REASON],
            guard: Some(reason_given),
            ..Transition::new(
                "cancel",
                Action::Cancel,
                &["planned", "dispatched", "in_progress"],
                Some("cancelled"),
                "job.cancelled",
            )
        },
    ],
};

fn count(r: &Record, f: &str) -> i64 {
    r.get(f).and_then(Value::as_i64).unwrap_or(0)
}

/// Dispatching names the day.
fn scheduled(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if cx.record.get(SCHEDULED_ON).is_none_or(Value::is_null) {
        return Err(Refusal::new(
            SCHEDULED_ON,
            codes::REQUIRED,
            "schedule the job before dispatching it",
        ));
    }
    Ok(())
}

/// A job starts with a crew.
fn has_crew(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if count(cx.record, CREW_COUNT) == 0 {
        return Err(Refusal::new(
            "crew_assignments",
            codes::NO_CREW,
            "a job cannot start without a crew",
        ));
    }
    Ok(())
}

/// A job completes with every required step done or skipped, and signed when it must be.
fn completable(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    let open = count(cx.record, REQUIRED_OPEN);
    if open > 0 {
        return Err(Refusal::new(
            "job_steps",
            codes::OPEN_STEPS,
            format!("{open} required step(s) still open"),
        ));
    }
    let yes = |f| cx.record.get(f) == Some(&Value::Bool(true));
    if yes(SIGNATURE_REQUIRED) && !yes(CUSTOMER_SIGNED) {
        return Err(Refusal::new(
            CUSTOMER_SIGNED,
            codes::UNSIGNED,
            "this job needs the customer's signature",
        ));
    }
    Ok(())
}

/// A cancellation says why.
fn reason_given(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if cx.record.str(CANCEL_REASON).is_none_or(|s| s.trim().is_empty()) {
        return Err(Refusal::new(
            CANCEL_REASON,
            codes::REQUIRED,
            "say why the job is cancelled",
        ));
    }
    Ok(())
}

/// A job is for a contact or a company, and its time window ends after it starts.
fn check_job(r: &Record, errs: &mut Vec<FieldError>) {
    if r.get(CONTACT_ID).is_none_or(Value::is_null) && r.get(COMPANY_ID).is_none_or(Value::is_null) {
        errs.push(FieldError::new(
            CONTACT_ID,
            codes::REQUIRED,
            "a job is for a contact or a company",
        ));
    }
    if let (Some(Value::Timestamp(s)), Some(Value::Timestamp(e))) = (r.get(WINDOW_START), r.get(WINDOW_END))
        && e <= s
    {
        errs.push(FieldError::new(
            WINDOW_END,
            codes::TOO_SMALL,
            "the window ends after it starts",
        ));
    }
}

/// A job derives its progress and crew from its children, numbers steps given without a position,
/// keeps every step activity on a step of the same job, and starts with its type's template steps.
#[derive(Debug)]
pub struct JobRules;

impl EntityRules for JobRules {
    fn needs(&self) -> &'static [Need] {
        &[Need::RecordsOf("job_template")]
    }

    fn default_children(&self, child: &'static EntityDef, input: &Map<String, Json>, ctx: &WriteCtx) -> Vec<Json> {
        if child.name != JOB_STEP.name {
            return Vec::new();
        }
        let Some(job_type) = input.get(JOB_TYPE).and_then(Json::as_str) else {
            return Vec::new();
        };
        ctx.records_of(JOB_TEMPLATE.name)
            .iter()
            .find(|t| t.str(template::fields::JOB_TYPE) == Some(job_type))
            .map(template::step_inputs)
            .unwrap_or_default()
    }

    fn derive_from_children(
        &self,
        job: &mut Record,
        children: &mut [(&'static EntityDef, Vec<Record>)],
        _cx: &ComputeCtx,
    ) -> Result<()> {
        let mut steps_ids = Vec::new();
        let (mut total, mut finished, mut required_open) = (0i64, 0i64, 0i64);
        let mut crew: Vec<String> = Vec::new();
        for (def, rows) in children.iter_mut() {
            if def.name == JOB_STEP.name {
                step::number(rows);
                for s in rows.iter() {
                    steps_ids.push(s.id);
                    total += 1;
                    if !step::is_open(s) {
                        finished += 1;
                    } else if s.get(step::fields::REQUIRED) == Some(&Value::Bool(true)) {
                        required_open += 1;
                    }
                }
            } else if def.name == CREW_ASSIGNMENT.name {
                crew.extend(
                    rows.iter()
                        .filter_map(|a| a.id_of(crew::fields::USER_ID))
                        .map(|u| u.to_string()),
                );
            }
        }
        for (def, rows) in children.iter() {
            if def.name != STEP_ACTIVITY.name {
                continue;
            }
            if let Some(bad) = rows
                .iter()
                .find(|a| a.id_of(step::fields::STEP_ID).is_none_or(|s| !steps_ids.contains(&s)))
            {
                return Err(Error::field(
                    step::fields::STEP_ID,
                    codes::UNKNOWN_REFERENCE,
                    format!("step activity {} names no step of this job", bad.id),
                ));
            }
        }
        crew.sort();
        crew.dedup();
        job.set(STEP_COUNT, total);
        job.set(STEPS_FINISHED, finished);
        job.set(PROGRESS, if total == 0 { 0 } else { finished * 100 / total });
        job.set(REQUIRED_OPEN, required_open);
        job.set(CREW_COUNT, crew.len() as i64);
        job.set(
            CREW_USER_IDS,
            if crew.is_empty() {
                Value::Null
            } else {
                Value::List(crew)
            },
        );
        Ok(())
    }
}

/// A cancelled job holds nobody's day: its crew's assignments leave "my day" and the calendar.
pub fn is_cancelled(job: &Record) -> bool {
    job.str(STATUS) == Some(JobStatus::Cancelled.key())
}

/// A job's steps still to do, in order, from its steps.
pub fn open_steps(mut steps: Vec<Record>) -> Vec<Record> {
    steps.retain(step::is_open);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Id;

    fn rec(def: &'static EntityDef, n: u128) -> Record {
        Record::empty(def, Id::nil(), Id::from_u128(n), Default::default())
    }

    #[test]
    fn progress_and_crew_come_from_the_children() {
        let mut job = rec(&JOB, 1);
        let mut s1 = rec(&JOB_STEP, 2);
        s1.set(step::fields::REQUIRED, true);
        s1.set(step::fields::STATUS, "done");
        let mut s2 = rec(&JOB_STEP, 3);
        s2.set(step::fields::REQUIRED, true);
        s2.set(step::fields::STATUS, "pending");
        let mut s3 = rec(&JOB_STEP, 4);
        s3.set(step::fields::REQUIRED, false);
        s3.set(step::fields::STATUS, "pending");
        let mut a = rec(&CREW_ASSIGNMENT, 5);
        a.set(crew::fields::USER_ID, Id::from_u128(9));
        let mut b = rec(&CREW_ASSIGNMENT, 6);
        b.set(crew::fields::USER_ID, Id::from_u128(9));
        let mut children = vec![(&*JOB_STEP, vec![s1, s2, s3]), (&*CREW_ASSIGNMENT, vec![a, b])];
        let cx = ComputeCtx::new(Default::default(), None);
        JobRules.derive_from_children(&mut job, &mut children, &cx).unwrap();
        assert_eq!(count(&job, STEP_COUNT), 3);
        assert_eq!(count(&job, STEPS_FINISHED), 1);
        assert_eq!(count(&job, PROGRESS), 33);
        assert_eq!(count(&job, REQUIRED_OPEN), 1);
        assert_eq!(count(&job, CREW_COUNT), 1, "one person twice is one crew member");
        // Steps given without a position are numbered after the last one, in the order given.
        let positions: Vec<_> = children[0].1.iter().map(|s| count(s, step::fields::POSITION)).collect();
        assert_eq!(positions, [1, 2, 3]);
    }

    #[test]
    fn an_activity_must_name_a_step_of_its_job() {
        let mut job = rec(&JOB, 1);
        let mut act = rec(&STEP_ACTIVITY, 7);
        act.set(step::fields::STEP_ID, Id::from_u128(99));
        let mut children = vec![(&*JOB_STEP, vec![rec(&JOB_STEP, 2)]), (&*STEP_ACTIVITY, vec![act])];
        let cx = ComputeCtx::new(Default::default(), None);
        let err = JobRules.derive_from_children(&mut job, &mut children, &cx).unwrap_err();
        assert_eq!(err.code(), "validation");
    }
}
