//! A job's ordered steps and the activities logged against them. Both are children of the job: they
//! are written in its change set (its progress re-derived), read with it, and in the scope of whoever
//! may read it. A step moves through its own workflow (start, complete, skip with a reason, reopen);
//! when it started, when it finished and who finished it are stamped by the core, never taken from
//! the client. An activity is a note, a measurement or a checklist, typed and checked here.

use super::{SINCE, declare, keyed_enum};
use crate::access::Action;
use crate::error::{FieldError, codes};
use crate::record::Record;
use crate::schema::{ChildOf, EntityDef, FieldDef as F};
use crate::value::{FieldType as T, Value};
use crate::workflow::{Decision, GuardCtx, Refusal, Stamp, Transition, Workflow};

declare!(JOB_STEP, job_step);
declare!(STEP_ACTIVITY, step_activity);

keyed_enum!(
    /// Where a step stands.
    StepStatus {
        Pending = "pending",
        InProgress = "in_progress",
        Done = "done",
        Skipped = "skipped",
    }
);

keyed_enum!(
    /// What a step activity records.
    StepActivityKind {
        Note = "note",
        Measurement = "measurement",
        Checklist = "checklist",
    }
);

/// Field names of a step and of a step activity.
pub mod fields {
    pub const JOB_ID: &str = "job_id";
    pub const POSITION: &str = "position";
    pub const NAME: &str = "name";
    pub const REQUIRED: &str = "required";
    pub const STATUS: &str = "status";
    pub const SKIP_REASON: &str = "skip_reason";
    pub const STARTED_AT: &str = "started_at";
    pub const COMPLETED_AT: &str = "completed_at";
    pub const COMPLETED_BY: &str = "completed_by";

    pub const STEP_ID: &str = "step_id";
    pub const KIND: &str = "kind";
    pub const NOTE: &str = "note";
    /// A measurement: what was measured, the number and its unit.
    pub const MEASURE: &str = "measure";
    pub const AMOUNT: &str = "amount";
    pub const UNIT: &str = "unit";
    /// A checklist: `[{"item": "...", "done": true}]`.
    pub const CHECKLIST: &str = "checklist";
}
use fields::*;

/// Most items of one checklist.
pub const MAX_CHECKLIST_ITEMS: usize = 200;

fn job_step() -> EntityDef {
    let mut e = EntityDef::new("job_step", "job_steps")
        .field(F::new(JOB_ID, T::Ref("job")).required())
        .field(F::new(POSITION, T::Integer).range(Some(1), Some(100_000)))
        .field(F::new(NAME, T::Text).required().max_len(200))
        .field(F::new(REQUIRED, T::Bool).required().default(true))
        .field(
            F::new(STATUS, T::Enum)
                .options(StepStatus::KEYS)
                .read_only()
                .default(StepStatus::Pending.key()),
        )
        .field(F::new(SKIP_REASON, T::Text).max_len(2000).read_only())
        .field(F::new(STARTED_AT, T::Timestamp).read_only())
        .field(F::new(COMPLETED_AT, T::Timestamp).read_only())
        .field(F::new(COMPLETED_BY, T::Ref("user")).read_only());
    e.since = SINCE;
    e.child_of = Some(ChildOf {
        parent: "job",
        field: JOB_ID,
        order_by: &[POSITION],
    });
    e.workflow = Some(&STEP_WORKFLOW);
    e.indexes = vec![&[JOB_ID, POSITION]];
    // Photos of the step's work (they follow the job's scope, like the step).
    e.attachments = Some(Default::default());
    e
}

fn step_activity() -> EntityDef {
    let mut e = EntityDef::new("step_activity", "step_activities")
        .field(F::new(JOB_ID, T::Ref("job")).required())
        .field(F::new(STEP_ID, T::Ref("job_step")).required())
        .field(F::new(KIND, T::Enum).options(StepActivityKind::KEYS).required())
        .field(F::new(NOTE, T::Text).max_len(10_000))
        .field(F::new(MEASURE, T::Text).max_len(100))
        .field(F::new(AMOUNT, T::Number))
        .field(F::new(UNIT, T::Text).max_len(20))
        .field(F::new(CHECKLIST, T::Json));
    e.since = SINCE;
    e.child_of = Some(ChildOf {
        parent: "job",
        field: JOB_ID,
        order_by: &["created_at"],
    });
    e.check = Some(check_activity);
    e.indexes = vec![&[JOB_ID, STEP_ID]];
    e
}

/// A step's lifecycle: forward by the crew (start, complete, skip), back by whoever may edit it.
pub static STEP_WORKFLOW: Workflow = Workflow {
    field: STATUS,
    locked: &[],
    reenter_on_edit: None,
    create_stamps: &[],
    transitions: &[
        Transition {
            stamps: &[(STARTED_AT, Stamp::Now)],
            ..Transition::new(
                "start",
                Action::Start,
                &["pending"],
                Some("in_progress"),
                "job_step.started",
            )
        },
        Transition {
            stamps: &[(COMPLETED_AT, Stamp::Now), (COMPLETED_BY, Stamp::Actor)],
            decide: Some(started_then),
            ..Transition::new(
                "complete",
                Action::Complete,
                &["pending", "in_progress"],
                Some("done"),
                "job_step.completed",
            )
        },
        Transition {
            stamps: &[(COMPLETED_AT, Stamp::Now), (COMPLETED_BY, Stamp::Actor)],
            accepts: &[SKIP_REASON],
            guard: Some(skip_reason_given),
            ..Transition::new(
                "skip",
                Action::Complete,
                &["pending", "in_progress"],
                Some("skipped"),
                "job_step.skipped",
            )
        },
        Transition {
            decide: Some(cleared),
            ..Transition::new(
                "reopen",
                Action::Update,
                &["done", "skipped"],
                Some("pending"),
                "job_step.reopened",
            )
        },
    ],
};

/// A step completed without being started started when it completed.
fn started_then(cx: &GuardCtx<'_>) -> std::result::Result<Decision, Refusal> {
    let started = match cx.before.get(STARTED_AT) {
        Some(v @ Value::Timestamp(_)) => v.clone(),
        _ => Value::Timestamp(cx.now),
    };
    Ok(Decision {
        to: StepStatus::Done.key(),
        set: vec![(STARTED_AT, started)],
    })
}

/// A reopened step is pending again, with nothing of its last run left.
fn cleared(_: &GuardCtx<'_>) -> std::result::Result<Decision, Refusal> {
    Ok(Decision {
        to: StepStatus::Pending.key(),
        set: [STARTED_AT, COMPLETED_AT, COMPLETED_BY, SKIP_REASON]
            .map(|f| (f, Value::Null))
            .to_vec(),
    })
}

fn skip_reason_given(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if cx.record.str(SKIP_REASON).is_none_or(|s| s.trim().is_empty()) {
        return Err(Refusal::new(
            SKIP_REASON,
            codes::REQUIRED,
            "say why the step is skipped",
        ));
    }
    Ok(())
}

/// A step still to do: neither done nor skipped (what a job's `required_open` counts and a crew
/// member's day lists).
pub fn is_open(s: &Record) -> bool {
    !matches!(
        s.str(STATUS).and_then(StepStatus::from_key),
        Some(StepStatus::Done | StepStatus::Skipped)
    )
}

/// Numbers steps given without a position after the last numbered one, in the order given, and
/// sorts every step by position.
pub(crate) fn number(steps: &mut [Record]) {
    let mut next = steps
        .iter()
        .filter_map(|s| s.get(POSITION).and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    for s in steps.iter_mut().filter(|s| s.get(POSITION).is_none_or(Value::is_null)) {
        next += 1;
        s.set(POSITION, next);
    }
    steps.sort_by_key(|s| (s.get(POSITION).and_then(Value::as_i64), s.id));
}

/// An activity carries what its kind records: a note's text, a measurement's name and amount, a
/// checklist's items (`[{"item": "Doors protected", "done": true}]`).
fn check_activity(r: &Record, errs: &mut Vec<FieldError>) {
    let set = |f| r.get(f).is_some_and(|v| !v.is_null());
    match r.str(KIND).and_then(StepActivityKind::from_key) {
        Some(StepActivityKind::Note) if !set(NOTE) => {
            errs.push(FieldError::new(NOTE, codes::REQUIRED, "a note has text"));
        }
        Some(StepActivityKind::Measurement) => {
            for f in [MEASURE, AMOUNT] {
                if !set(f) {
                    errs.push(FieldError::new(
                        f,
                        codes::REQUIRED,
                        "a measurement names what and how much",
                    ));
                }
            }
        }
        Some(StepActivityKind::Checklist) => match r.get(CHECKLIST) {
            Some(Value::Json(j)) => check_checklist(j, errs),
            _ => errs.push(FieldError::new(CHECKLIST, codes::REQUIRED, "a checklist has items")),
        },
        _ => {}
    }
}

fn check_checklist(j: &serde_json::Value, errs: &mut Vec<FieldError>) {
    let Some(items) = j.as_array().filter(|a| !a.is_empty() && a.len() <= MAX_CHECKLIST_ITEMS) else {
        errs.push(FieldError::new(
            CHECKLIST,
            codes::INVALID_FORMAT,
            format!("a list of 1 to {MAX_CHECKLIST_ITEMS} items"),
        ));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let ok = item.as_object().is_some_and(|o| {
            o.len() == 2
                && o.get("item")
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| !s.trim().is_empty() && s.len() <= 500)
                && o.get("done").is_some_and(serde_json::Value::is_boolean)
        });
        if !ok {
            errs.push(FieldError::new(
                format!("{CHECKLIST}[{i}]"),
                codes::INVALID_FORMAT,
                "an item is {\"item\": text of at most 500 bytes, \"done\": true or false}",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Id;
    use serde_json::json;

    fn activity(kind: &str, field: &str, v: Value) -> Vec<FieldError> {
        let mut r = Record::empty(&STEP_ACTIVITY, Id::nil(), Id::nil(), Default::default());
        r.set(KIND, kind);
        r.set(field, v);
        let mut errs = Vec::new();
        check_activity(&r, &mut errs);
        errs
    }

    #[test]
    fn activities_carry_what_their_kind_records() {
        assert!(activity("note", NOTE, Value::Text("Stairs are narrow".into())).is_empty());
        assert_eq!(activity("note", UNIT, Value::Text("m".into()))[0].path, NOTE);
        let fields: Vec<_> = activity("measurement", UNIT, Value::Text("m".into()))
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(fields, [MEASURE, AMOUNT]);
        let good = json!([{"item": "Doors protected", "done": true}, {"item": "Floor covered", "done": false}]);
        assert!(activity("checklist", CHECKLIST, Value::Json(good)).is_empty());
        let bad = json!([{"item": "Doors protected", "done": "yes"}, {"item": ""}]);
        let paths: Vec<_> = activity("checklist", CHECKLIST, Value::Json(bad))
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["checklist[0]", "checklist[1]"]);
        assert_eq!(
            activity("checklist", CHECKLIST, Value::Json(json!([])))[0].code,
            codes::INVALID_FORMAT
        );
    }
}
