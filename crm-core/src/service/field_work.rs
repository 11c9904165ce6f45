//! The views field work runs from: a crew member's day (their assignments of a date, each with its
//! job and the steps still open, and their appointments, in time order) and a dispatcher's board (the jobs scheduled on a
//! date, each with its crew, through the filter language and keyset pages, with lanes per truck and
//! per crew member). Both read as the actor: a field technician's day holds only jobs they may read.

use super::Service;
use crate::access::{Action, Actor};
use crate::analytics::field_work::{self as report, FieldWorkReport};
use crate::computed::{self, org_zone};
use crate::entity::job::{self as job_rules, crew, fields as job, step};
use crate::entity::{CREW_ASSIGNMENT, JOB, JOB_STEP};
use crate::error::{Error, Result};
use crate::query::{Filter, ListRequest, Op, Page, SortKey, StoreQuery};
use crate::record::Record;
use crate::store::Store;
use crate::value::{Id, Timestamp, Value};
use std::collections::BTreeMap;

/// Most assignments one day shows.
pub const MAX_DAY_ITEMS: u32 = 200;

/// Most jobs one field-work report reads.
pub const MAX_REPORT_JOBS: u32 = 200_000;

/// Jobs whose steps one query reads.
const STEP_CHUNK: usize = 500;

/// One item of a field worker's day: a crew assignment with its job, or an appointment (one
/// occurrence of it).
#[derive(Clone, Debug)]
pub struct DayItem {
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// The assignment (its role on the job); `None` for an appointment.
    pub assignment: Option<Record>,
    /// The job, as the reader may see it (its address, window, status, notes).
    pub job: Option<Record>,
    /// The job's steps not done or skipped yet, in order.
    pub open_steps: Vec<Record>,
    /// The appointment, as the reader may see it; `None` for an assignment.
    pub appointment: Option<Record>,
}

/// One job of a dispatcher's board, with its crew.
#[derive(Clone, Debug)]
pub struct BoardJob {
    pub job: Record,
    pub crew: Vec<Record>,
}

/// A page of a dispatcher's board for a date.
#[derive(Clone, Debug)]
pub struct Board {
    pub date: time::Date,
    pub jobs: Vec<BoardJob>,
    /// The jobs of this page per truck (`vehicle`; jobs without one under `""`), in page order.
    pub by_vehicle: BTreeMap<String, Vec<Id>>,
    /// The jobs of this page per crew member, in page order.
    pub by_user: BTreeMap<Id, Vec<Id>>,
    pub next_cursor: Option<String>,
}

impl<S: Store> Service<S> {
    /// The actor's day on `date` (the tenant's today when `None`, in the tenant's time zone): every
    /// assignment of theirs that overlaps the day, with its job and open steps, and every occurrence
    /// of their appointments that overlaps it, in time order. Jobs cancelled since, and cancelled or
    /// missed appointments, are left out.
    pub async fn my_day(&self, actor: &Actor, date: Option<time::Date>) -> Result<Vec<DayItem>> {
        let Some(me) = actor.user_id else {
            return Err(Error::forbidden(Action::Read, CREW_ASSIGNMENT.name, vec![]));
        };
        actor.authorize(&JOB, Action::Read)?;
        let zone = org_zone(Some(&self.org(actor.tenant).await?));
        let date = date.unwrap_or_else(|| computed::local_date(self.clock.now(), &zone));
        let from = computed::day_start(date, &zone);
        let to = computed::day_start(date.next_day().unwrap_or(date), &zone);
        let mut out = Vec::new();
        let (assignments, jobs): (Vec<Record>, Vec<Record>) = self
            .assignments_with_jobs(actor, me, from, to, MAX_DAY_ITEMS)
            .await?
            .into_iter()
            .unzip();
        let steps = self.children_of_many(actor, &jobs, &JOB_STEP).await?;
        for ((a, j), steps) in assignments.into_iter().zip(jobs).zip(steps) {
            let open_steps = job_rules::open_steps(steps);
            let at = |f| a.get(f).and_then(Value::as_timestamp).unwrap_or_default();
            out.push(DayItem {
                starts_at: at(crew::fields::STARTS_AT),
                ends_at: at(crew::fields::ENDS_AT),
                job: Some(j),
                assignment: Some(actor.redact(a)),
                open_steps,
                appointment: None,
            });
        }
        for (starts_at, ends_at, a) in self.my_appointments(actor, me, from, to, MAX_DAY_ITEMS).await? {
            out.push(DayItem {
                starts_at,
                ends_at,
                assignment: None,
                job: None,
                open_steps: Vec::new(),
                appointment: Some(a),
            });
        }
        out.sort_by_key(|i| i.starts_at);
        out.truncate(MAX_DAY_ITEMS as usize);
        Ok(out)
    }

    /// `user`'s crew assignments overlapping `[from, to)` in time order (at most `limit`), each with
    /// its job as the actor may see it; assignments of jobs the actor can't read or that were
    /// cancelled are left out.
    pub(crate) async fn assignments_with_jobs(
        &self,
        actor: &Actor,
        user: Id,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Record, Record)>> {
        let q = StoreQuery {
            filter: Filter::and([
                Filter::eq(crew::fields::USER_ID, user),
                Filter::cmp(crew::fields::STARTS_AT, Op::Lt, Value::Timestamp(to)),
                Filter::cmp(crew::fields::ENDS_AT, Op::Gt, Value::Timestamp(from)),
            ]),
            sort: vec![SortKey::asc(crew::fields::STARTS_AT), SortKey::asc("id")],
            limit,
        };
        let mut out = Vec::new();
        for a in self.store.query(actor.tenant, &CREW_ASSIGNMENT, &q).await? {
            let Some(jid) = a.id_of(crew::fields::JOB_ID) else {
                continue;
            };
            let Ok(j) = self.visible(actor, &JOB, jid).await else {
                continue;
            };
            if job_rules::is_cancelled(&j) {
                continue;
            }
            out.push((a, self.present(actor, j).await?));
        }
        Ok(out)
    }

    /// How the jobs scheduled from `from` to `to` (inclusive) that the actor may read went: completed,
    /// on time, cancelled, and how long each kind of step took (see
    /// [`crate::analytics::field_work`]). `from` defaults to the tenant's today, `to` to `from` (a
    /// field manager's numbers for the day). `LimitExceeded` past [`MAX_REPORT_JOBS`] jobs.
    pub async fn field_work_report(
        &self,
        actor: &Actor,
        from: Option<time::Date>,
        to: Option<time::Date>,
    ) -> Result<FieldWorkReport> {
        let scope = actor.authorize(&JOB, Action::Read)?;
        let zone = org_zone(Some(&self.org(actor.tenant).await?));
        let from = from.unwrap_or_else(|| computed::local_date(self.clock.now(), &zone));
        let to = to.unwrap_or(from);
        let filter = Filter::and([
            actor.scope_filter(&JOB, scope),
            Filter::cmp(job::SCHEDULED_ON, Op::Ge, Value::Date(from)),
            Filter::cmp(job::SCHEDULED_ON, Op::Le, Value::Date(to)),
        ]);
        let jobs = self
            .store
            .query(actor.tenant, &JOB, &StoreQuery::by_id(filter, MAX_REPORT_JOBS + 1))
            .await?;
        if jobs.len() > MAX_REPORT_JOBS as usize {
            return Err(Error::LimitExceeded {
                what: "jobs in one field-work report".into(),
                limit: u64::from(MAX_REPORT_JOBS),
            });
        }
        let mut steps = Vec::new();
        for chunk in jobs.chunks(STEP_CHUNK) {
            let ids = chunk.iter().map(|j| Value::Id(j.id)).collect();
            // Along the steps' job index (in id order SQLite walks every step of the tenant).
            let q = StoreQuery::by_ref(
                &JOB_STEP,
                step::fields::JOB_ID,
                Filter::In {
                    field: step::fields::JOB_ID.into(),
                    values: ids,
                },
                crate::service::MAX_CHILDREN * STEP_CHUNK as u32,
            );
            steps.extend(self.store.query(actor.tenant, &JOB_STEP, &q).await?);
        }
        Ok(report::report(&jobs, &steps, |d| {
            computed::day_start(d.next_day().unwrap_or(d), &zone)
        }))
    }

    /// One page of the jobs scheduled on `date` that the actor may read, narrowed by the request's
    /// filter (`vehicle:truck-2`, `team_id:...`), sorted by the request (by truck and window start
    /// when it names no order), each with its crew.
    pub async fn board(&self, actor: &Actor, date: time::Date, req: &ListRequest) -> Result<Board> {
        let mut req = req.clone();
        if req.sort.is_empty() {
            req.sort = vec![SortKey::asc(job::VEHICLE), SortKey::asc(job::WINDOW_START)];
        }
        let on_date = Filter::eq(job::SCHEDULED_ON, Value::Date(date));
        let Page { items, next_cursor } = self.page(actor, &JOB, &req, on_date).await?;
        let mut board = Board {
            date,
            jobs: Vec::with_capacity(items.len()),
            by_vehicle: BTreeMap::new(),
            by_user: BTreeMap::new(),
            next_cursor,
        };
        let crews = self.children_of_many(actor, &items, &CREW_ASSIGNMENT).await?;
        for (j, crew) in items.into_iter().zip(crews) {
            let vehicle = j.str(job::VEHICLE).unwrap_or_default().to_owned();
            board.by_vehicle.entry(vehicle).or_default().push(j.id);
            for u in crew.iter().filter_map(|a| a.id_of(crew::fields::USER_ID)) {
                let lane = board.by_user.entry(u).or_default();
                if lane.last() != Some(&j.id) {
                    lane.push(j.id);
                }
            }
            board.jobs.push(BoardJob { job: j, crew });
        }
        Ok(board)
    }
}
