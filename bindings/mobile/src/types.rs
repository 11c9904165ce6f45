//! The records and enums that cross the FFI. Stable shapes are typed (a lead, an activity, a score
//! explanation, an audit entry, a change event); the dynamic rest (custom fields, the full record of
//! any entity type, patches) crosses as JSON text, exactly the core's `Record::to_json` form.
//! Times are RFC 3339 strings in UTC (`2025-06-01T09:30:00Z`). Money is the core's decimal string in
//! major units with the currency's two decimals (`"18500.00"`), the same in typed records, in JSON
//! records and in patches, so a value read is written back as is.

use crm_core::change::{AuditEntry as CoreAudit, Event};
use crm_core::entity::{ActivityKind as CoreActivityKind, Temperature as CoreTemperature};
use crm_core::record::Record;
use crm_core::scoring::{ContributionKind, ScoreResult};
use crm_core::value::{Id, Value};

/// Kinds of activity (the core's `entity::ACTIVITY_KINDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Note,
    Sms,
    Visit,
    CheckIn,
}

/// The mirror enums convert to and from the core's both ways with exhaustive matches, so a variant
/// added on either side fails to compile until the other follows; keys are always the core's.
impl From<ActivityKind> for CoreActivityKind {
    fn from(k: ActivityKind) -> Self {
        match k {
            ActivityKind::Call => CoreActivityKind::Call,
            ActivityKind::Email => CoreActivityKind::Email,
            ActivityKind::Meeting => CoreActivityKind::Meeting,
            ActivityKind::Note => CoreActivityKind::Note,
            ActivityKind::Sms => CoreActivityKind::Sms,
            ActivityKind::Visit => CoreActivityKind::Visit,
            ActivityKind::CheckIn => CoreActivityKind::CheckIn,
        }
    }
}

impl From<CoreActivityKind> for ActivityKind {
    fn from(k: CoreActivityKind) -> Self {
        match k {
            CoreActivityKind::Call => ActivityKind::Call,
            CoreActivityKind::Email => ActivityKind::Email,
            CoreActivityKind::Meeting => ActivityKind::Meeting,
            CoreActivityKind::Note => ActivityKind::Note,
            CoreActivityKind::Sms => ActivityKind::Sms,
            CoreActivityKind::Visit => ActivityKind::Visit,
            CoreActivityKind::CheckIn => ActivityKind::CheckIn,
        }
    }
}

impl ActivityKind {
    /// The stored key (the core's).
    pub fn key(self) -> &'static str {
        CoreActivityKind::from(self).key()
    }

    pub(crate) fn from_key(k: &str) -> Option<Self> {
        CoreActivityKind::from_key(k).map(Into::into)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn key(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A lead's temperature (the core's `entity::TEMPERATURES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Temperature {
    Hot,
    Warm,
    Cold,
}

impl From<Temperature> for CoreTemperature {
    fn from(t: Temperature) -> Self {
        match t {
            Temperature::Hot => CoreTemperature::Hot,
            Temperature::Warm => CoreTemperature::Warm,
            Temperature::Cold => CoreTemperature::Cold,
        }
    }
}

impl From<CoreTemperature> for Temperature {
    fn from(t: CoreTemperature) -> Self {
        match t {
            CoreTemperature::Hot => Temperature::Hot,
            CoreTemperature::Warm => Temperature::Warm,
            CoreTemperature::Cold => Temperature::Cold,
        }
    }
}

impl Temperature {
    /// The stored key (the core's).
    pub fn key(self) -> &'static str {
        CoreTemperature::from(self).key()
    }

    pub(crate) fn from_key(k: &str) -> Option<Self> {
        CoreTemperature::from_key(k).map(Into::into)
    }
}

/// A list request: the text filter language (`status:new score>=60 city:Denver`), a sort
/// (`-score,created_at`), a page size (capped by the core) and the cursor of the previous page.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct ListQuery {
    #[uniffi(default = None)]
    pub q: Option<String>,
    #[uniffi(default = None)]
    pub sort: Option<String>,
    #[uniffi(default = None)]
    pub limit: Option<u32>,
    #[uniffi(default = None)]
    pub cursor: Option<String>,
}

/// Any record, of any entity type: system columns plus `json`, the record as the user may see it
/// (fields the user may not read are absent).
#[derive(Debug, Clone, uniffi::Record)]
pub struct CrmRecord {
    pub entity: String,
    pub id: String,
    /// Pass it back to `update`: a stale version is a `Conflict`.
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub json: String,
}

/// A follow-up the user owes ("my follow-ups today"): the record, when, and where it stands.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FollowUp {
    /// `lead` or `contact`.
    pub entity: String,
    pub id: String,
    /// RFC 3339 (UTC).
    pub next_followup_at: String,
    /// `overdue` or `due_today`: the core's computed `followup`, in the tenant's day.
    pub status: String,
    pub record: CrmRecord,
}

/// One child type's rows of a parent record (a quote's lines), in their declared order.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ChildRecords {
    /// The child type's table name, the key it has in a parent's create input (`quote_lines`).
    pub table: String,
    /// The child entity type (`quote_line`).
    pub entity: String,
    pub items: Vec<CrmRecord>,
}

/// One item of the user's day (`Crm.my_day`): a crew assignment with its job, or an occurrence of
/// an appointment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DayItem {
    /// RFC 3339.
    pub starts_at: String,
    pub ends_at: String,
    /// The assignment (its `role` on the job); `None` for an appointment.
    pub assignment: Option<CrmRecord>,
    /// The job: address, window, truck, status, notes; `None` for an appointment.
    pub job: Option<CrmRecord>,
    /// The job's steps not done or skipped yet, in order.
    pub open_steps: Vec<CrmRecord>,
    /// The appointment (title, place, attendees); `None` for an assignment.
    pub appointment: Option<CrmRecord>,
}

impl From<crm_core::service::DayItem> for DayItem {
    fn from(i: crm_core::service::DayItem) -> Self {
        DayItem {
            starts_at: i.starts_at.to_rfc3339(),
            ends_at: i.ends_at.to_rfc3339(),
            assignment: i.assignment.map(CrmRecord::from),
            job: i.job.map(CrmRecord::from),
            open_steps: i.open_steps.into_iter().map(CrmRecord::from).collect(),
            appointment: i.appointment.map(CrmRecord::from),
        }
    }
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct RecordPage {
    pub items: Vec<CrmRecord>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A lead, typed. Every field is optional: absent when the user may not read it (or unset).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Lead {
    pub id: String,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub source: Option<String>,
    /// A stage key of the lead's pipeline (pipelines are tenant data, so this is text).
    pub status: Option<String>,
    pub score: Option<i64>,
    pub temperature: Option<Temperature>,
    pub owner_id: Option<String>,
    pub project_type: Option<String>,
    pub priority: Option<String>,
    /// Money: a decimal string in major units (`"18500.00"`), the core's form both ways: put it back
    /// into a patch unchanged (`{"estimated_value": "18500.00"}`) and the stored amount is unchanged.
    pub estimated_value: Option<String>,
    pub notes: Option<String>,
    /// The whole record (custom fields included) as JSON.
    pub json: String,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct LeadPage {
    pub items: Vec<Lead>,
    pub next_cursor: Option<String>,
}

/// An activity (call, visit, check-in, ...), typed.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Activity {
    pub id: String,
    pub version: u64,
    pub created_at: String,
    pub kind: Option<ActivityKind>,
    pub direction: Option<Direction>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub outcome: Option<String>,
    pub occurred_at: Option<String>,
    pub duration_minutes: Option<i64>,
    pub lead_id: Option<String>,
    pub contact_id: Option<String>,
    pub company_id: Option<String>,
    pub owner_id: Option<String>,
    pub json: String,
}

/// What to log. The core validates it (an activity belongs to a lead, a contact or a company;
/// `occurred_at` is not in the future; ...). `extra_json`: further fields, e.g. `{"custom": {...}}`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ActivityInput {
    pub kind: ActivityKind,
    #[uniffi(default = None)]
    pub lead_id: Option<String>,
    #[uniffi(default = None)]
    pub contact_id: Option<String>,
    #[uniffi(default = None)]
    pub company_id: Option<String>,
    #[uniffi(default = None)]
    pub direction: Option<Direction>,
    #[uniffi(default = None)]
    pub subject: Option<String>,
    #[uniffi(default = None)]
    pub body: Option<String>,
    #[uniffi(default = None)]
    pub outcome: Option<String>,
    /// RFC 3339; `None` means now (the service's clock).
    #[uniffi(default = None)]
    pub occurred_at: Option<String>,
    #[uniffi(default = None)]
    pub duration_minutes: Option<i64>,
    #[uniffi(default = None)]
    pub extra_json: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ScoreLineKind {
    /// A rule's points.
    Rule,
    /// A group's or the total's cap cut points.
    Cap,
    /// A floor gave points back.
    Floor,
    /// A reset condition zeroed the score.
    Reset,
}

/// One line of a score's explanation; the `points` of all lines add up to the score.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ScoreLine {
    pub group: String,
    pub rule: String,
    pub count: u32,
    /// Whole points, as the core computes them.
    pub points: i64,
    pub kind: ScoreLineKind,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct ScoreExplanation {
    pub score: i64,
    pub tier: String,
    /// The same enum as `Lead.temperature`: what the lead's field holds after this score.
    pub temperature: Temperature,
    pub reset: bool,
    pub lines: Vec<ScoreLine>,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct AuditQuery {
    #[uniffi(default = None)]
    pub entity: Option<String>,
    #[uniffi(default = None)]
    pub entity_id: Option<String>,
    /// Entries with a greater sequence number.
    #[uniffi(default = 0)]
    pub after_seq: u64,
    /// Clamped by the core to 1..=1000.
    #[uniffi(default = 100)]
    pub limit: u32,
}

/// A field's old and new value (JSON text; `null` is "not set").
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldChange {
    pub field: String,
    pub old_json: String,
    pub new_json: String,
}

/// An entry of the hash-chained audit log.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: String,
    /// The acting user (`None`: the system).
    pub actor_id: Option<String>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub changes: Vec<FieldChange>,
    pub prev_hash: String,
    pub hash: String,
}

/// One entry of the local change feed (the core's outbox): every committed change, in order.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ChangeEvent {
    /// Monotonic per tenant; pass the last one seen as `after_seq` to continue.
    pub seq: u64,
    pub id: String,
    pub at: String,
    /// `lead.updated`, `activity.created`, `lead.scored`, ...
    pub kind: String,
    pub entity: String,
    pub entity_id: Option<String>,
    /// The record after the change, as this user may see it.
    pub payload_json: String,
}

/// What a logged row write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncOp {
    Insert,
    Update,
    Delete,
}

/// One row write of a pending change set.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncWrite {
    /// `lead`, `activity`, ...
    pub entity: String,
    pub id: String,
    pub op: SyncOp,
    /// The version the row had before the write (0 for an insert): the server applies the write
    /// only if its row is still at this version, else the upload is a conflict.
    pub expected_version: u64,
    /// The new values of the fields the write changed, as a JSON object (`{}` for a delete); an
    /// insert carries every non-null field; custom fields under `"custom"`.
    pub patch_json: String,
}

/// One change set made on this device and not yet acknowledged by a server (the local sync log).
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncEntry {
    /// Position in the log, in commit order; pass the last one uploaded to `mark_synced`.
    pub seq: u64,
    /// The change set's id (a UUIDv7): send it along so a retried upload can be de-duplicated.
    pub change_set_id: String,
    /// The user who made the change (`None` for the system).
    pub actor: Option<String>,
    pub at: String,
    /// The row writes, in order (score recomputations are left out: the server re-derives them).
    pub writes: Vec<SyncWrite>,
    /// Ids of the audit entries and events (the `id` of a `ChangeEvent`) the change produced.
    pub audit_ids: Vec<String>,
    pub event_ids: Vec<String>,
}

/// A demo user (one or more per built-in role).
#[derive(Debug, Clone, uniffi::Record)]
pub struct DemoUser {
    pub role: String,
    pub user_id: String,
    pub email: String,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct DemoTenant {
    pub tenant_id: String,
    pub users: Vec<DemoUser>,
}

/// What the front desk is told at a check-in (the core's `CheckInAnswer`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct CheckInAnswer {
    /// `allowed`, `warned` or `refused`.
    pub outcome: String,
    /// Why (a warning or a refusal), or a note for the desk.
    pub reason: Option<String>,
    pub contact_id: String,
    pub name: String,
    pub membership_id: Option<String>,
    /// The client's status: `none`, `upcoming`, `active`, `expiring`, `expired`, `frozen`, `cancelled`.
    pub status: String,
    /// The last day of the client's membership run, `YYYY-MM-DD`.
    pub ends_on: Option<String>,
    /// Visits left on the plan's allowance after this one (`None`: unlimited or no membership).
    pub visits_left: Option<i64>,
    /// The check-in recorded (in this device's database and its pending changes), if one was.
    pub check_in_id: Option<String>,
    pub at: String,
}

impl From<crm_core::service::CheckInAnswer> for CheckInAnswer {
    fn from(a: crm_core::service::CheckInAnswer) -> Self {
        CheckInAnswer {
            outcome: a.outcome,
            reason: a.reason,
            contact_id: a.contact_id.to_string(),
            name: a.name,
            membership_id: opt_id(a.membership_id),
            status: a.status,
            ends_on: a.ends_on,
            visits_left: a.visits_left,
            check_in_id: opt_id(a.check_in_id),
            at: a.at.to_rfc3339(),
        }
    }
}

/// Renewals and churn in one month (`YYYY-MM`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct MonthNumbers {
    pub month: String,
    pub renewals: u64,
    pub churn: u64,
}

/// Check-ins on one day (`YYYY-MM-DD`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct DayCount {
    pub day: String,
    pub check_ins: u64,
}

/// The owner's numbers (the core's `MembershipNumbers`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct MembershipNumbers {
    pub as_of: String,
    pub active_members: u64,
    pub expiring_7_days: u64,
    pub expiring_30_days: u64,
    /// The last 12 months, oldest first.
    pub months: Vec<MonthNumbers>,
    /// The last 30 days, oldest first.
    pub check_ins_per_day: Vec<DayCount>,
    /// 7 rows (Monday first) of 24 hourly counts, in the tenant's time zone.
    pub check_ins_by_hour: Vec<Vec<u64>>,
}

impl From<crm_core::analytics::memberships::MembershipNumbers> for MembershipNumbers {
    fn from(n: crm_core::analytics::memberships::MembershipNumbers) -> Self {
        MembershipNumbers {
            as_of: n.as_of,
            active_members: n.active_members,
            expiring_7_days: n.expiring_7_days,
            expiring_30_days: n.expiring_30_days,
            months: n
                .months
                .into_iter()
                .map(|m| MonthNumbers {
                    month: m.month,
                    renewals: m.renewals,
                    churn: m.churn,
                })
                .collect(),
            check_ins_per_day: n
                .check_ins_per_day
                .into_iter()
                .map(|d| DayCount {
                    day: d.day,
                    check_ins: d.check_ins,
                })
                .collect(),
            check_ins_by_hour: n.check_ins_by_hour,
        }
    }
}

/// The field manager's numbers over a period (the core's `FieldWorkReport`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldWorkReport {
    /// Jobs scheduled in the period (any state).
    pub jobs: u64,
    pub completed: u64,
    pub cancelled: u64,
    /// Completed jobs that completed within their window (or scheduled day).
    pub on_time: u64,
    /// `on_time` over `completed` in percent, a decimal string with one decimal; `None` without
    /// completed jobs.
    pub on_time_rate: Option<String>,
    /// Per step name, in name order.
    pub steps: Vec<StepDurations>,
}

/// How long the steps of one name took (minutes as decimal strings with one decimal).
#[derive(Debug, Clone, uniffi::Record)]
pub struct StepDurations {
    pub name: String,
    pub done: u64,
    pub skipped: u64,
    pub average_minutes: Option<String>,
    pub median_minutes: Option<String>,
}

impl From<crm_core::analytics::field_work::FieldWorkReport> for FieldWorkReport {
    fn from(r: crm_core::analytics::field_work::FieldWorkReport) -> Self {
        FieldWorkReport {
            jobs: r.jobs,
            completed: r.completed,
            cancelled: r.cancelled,
            on_time: r.on_time,
            on_time_rate: r.on_time_rate.map(|d| d.to_string()),
            steps: r
                .steps
                .into_iter()
                .map(|s| StepDurations {
                    name: s.name,
                    done: s.done,
                    skipped: s.skipped,
                    average_minutes: s.average_minutes.map(|d| d.to_string()),
                    median_minutes: s.median_minutes.map(|d| d.to_string()),
                })
                .collect(),
        }
    }
}

// ---- conversions ----

fn text(r: &Record, f: &str) -> Option<String> {
    r.str(f).map(str::to_owned)
}

fn id(r: &Record, f: &str) -> Option<String> {
    r.id_of(f).map(|i| i.to_string())
}

fn int(r: &Record, f: &str) -> Option<i64> {
    r.get(f).and_then(Value::as_i64)
}

/// Money in the core's JSON form (the decimal string `Money`'s `Display` gives), which the core's
/// validation reads back exactly.
fn money(r: &Record, f: &str) -> Option<String> {
    match r.get(f) {
        Some(v @ Value::Money(_)) => v.to_json().as_str().map(str::to_owned),
        _ => None,
    }
}

fn ts(r: &Record, f: &str) -> Option<String> {
    r.get(f).and_then(Value::as_timestamp).map(|t| t.to_rfc3339())
}

fn opt_id(i: Option<Id>) -> Option<String> {
    i.map(|i| i.to_string())
}

impl From<Record> for CrmRecord {
    fn from(r: Record) -> Self {
        CrmRecord {
            entity: r.entity.name.to_owned(),
            id: r.id.to_string(),
            version: r.version,
            created_at: r.created_at.to_rfc3339(),
            updated_at: r.updated_at.to_rfc3339(),
            json: r.to_json().to_string(),
        }
    }
}

impl From<Record> for FollowUp {
    fn from(r: Record) -> Self {
        use crm_core::entity::followup;
        FollowUp {
            entity: r.entity.name.to_owned(),
            id: r.id.to_string(),
            next_followup_at: r
                .get(followup::fields::NEXT_FOLLOWUP_AT)
                .and_then(Value::as_timestamp)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            status: followup::status_of(&r).map(|s| s.key().to_owned()).unwrap_or_default(),
            record: r.into(),
        }
    }
}

impl From<Record> for Lead {
    fn from(r: Record) -> Self {
        Lead {
            id: r.id.to_string(),
            version: r.version,
            created_at: r.created_at.to_rfc3339(),
            updated_at: r.updated_at.to_rfc3339(),
            first_name: text(&r, "first_name"),
            last_name: text(&r, "last_name"),
            company_name: text(&r, "company_name"),
            email: text(&r, "email"),
            phone: text(&r, "phone"),
            city: text(&r, "city"),
            source: text(&r, "source"),
            status: text(&r, "status"),
            score: int(&r, "score"),
            temperature: r.str("temperature").and_then(Temperature::from_key),
            owner_id: id(&r, "owner_id"),
            project_type: text(&r, "project_type"),
            priority: text(&r, "priority"),
            estimated_value: money(&r, "estimated_value"),
            notes: text(&r, "notes"),
            json: r.to_json().to_string(),
        }
    }
}

impl From<Record> for Activity {
    fn from(r: Record) -> Self {
        Activity {
            id: r.id.to_string(),
            version: r.version,
            created_at: r.created_at.to_rfc3339(),
            kind: r.str("kind").and_then(ActivityKind::from_key),
            direction: match r.str("direction") {
                Some("inbound") => Some(Direction::Inbound),
                Some("outbound") => Some(Direction::Outbound),
                _ => None,
            },
            subject: text(&r, "subject"),
            body: text(&r, "body"),
            outcome: text(&r, "outcome"),
            occurred_at: ts(&r, "occurred_at"),
            duration_minutes: int(&r, "duration_minutes"),
            lead_id: id(&r, "lead_id"),
            contact_id: id(&r, "contact_id"),
            company_id: id(&r, "company_id"),
            owner_id: id(&r, "owner_id"),
            json: r.to_json().to_string(),
        }
    }
}

impl From<ScoreResult> for ScoreExplanation {
    fn from(s: ScoreResult) -> Self {
        ScoreExplanation {
            score: s.score,
            tier: s.tier,
            temperature: s.temperature.into(),
            reset: s.reset,
            lines: s
                .contributions
                .into_iter()
                .map(|c| ScoreLine {
                    group: c.group,
                    rule: c.rule,
                    count: c.count,
                    points: c.points,
                    kind: match c.kind {
                        ContributionKind::Rule => ScoreLineKind::Rule,
                        ContributionKind::Cap => ScoreLineKind::Cap,
                        ContributionKind::Floor => ScoreLineKind::Floor,
                        ContributionKind::Reset => ScoreLineKind::Reset,
                    },
                })
                .collect(),
        }
    }
}

impl From<CoreAudit> for AuditEntry {
    fn from(a: CoreAudit) -> Self {
        AuditEntry {
            seq: a.seq,
            at: a.at.to_rfc3339(),
            actor_id: opt_id(a.actor),
            action: a.action,
            entity: a.entity,
            entity_id: opt_id(a.entity_id),
            changes: a
                .changes
                .into_iter()
                .map(|c| FieldChange {
                    field: c.field,
                    old_json: c.old.to_string(),
                    new_json: c.new.to_string(),
                })
                .collect(),
            prev_hash: a.prev_hash,
            hash: a.hash,
        }
    }
}

impl From<crm_core::sync::SyncEntry> for SyncEntry {
    fn from(e: crm_core::sync::SyncEntry) -> Self {
        let ids = |v: Vec<Id>| v.into_iter().map(|i| i.to_string()).collect();
        SyncEntry {
            seq: e.seq,
            change_set_id: e.change_set.to_string(),
            actor: opt_id(e.actor),
            at: e.at.to_rfc3339(),
            writes: e
                .writes
                .into_iter()
                .map(|w| SyncWrite {
                    entity: w.entity,
                    id: w.id.to_string(),
                    op: match w.op {
                        crm_core::sync::SyncOp::Insert => SyncOp::Insert,
                        crm_core::sync::SyncOp::Update => SyncOp::Update,
                        crm_core::sync::SyncOp::Delete => SyncOp::Delete,
                    },
                    expected_version: w.expected_version,
                    patch_json: serde_json::Value::Object(w.patch).to_string(),
                })
                .collect(),
            audit_ids: ids(e.audit),
            event_ids: ids(e.events),
        }
    }
}

impl From<Event> for ChangeEvent {
    fn from(e: Event) -> Self {
        ChangeEvent {
            seq: e.seq,
            id: e.id.to_string(),
            at: e.at.to_rfc3339(),
            kind: e.kind,
            entity: e.entity,
            entity_id: opt_id(e.entity_id),
            payload_json: e.payload.to_string(),
        }
    }
}

/// What an attachment is (the core's `AttachmentKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AttachmentKind {
    Photo,
    Document,
    Signature,
}

impl From<AttachmentKind> for crm_core::entity::attachment::AttachmentKind {
    fn from(k: AttachmentKind) -> Self {
        use crm_core::entity::attachment::AttachmentKind as K;
        match k {
            AttachmentKind::Photo => K::Photo,
            AttachmentKind::Document => K::Document,
            AttachmentKind::Signature => K::Signature,
        }
    }
}

impl From<crm_core::entity::attachment::AttachmentKind> for AttachmentKind {
    fn from(k: crm_core::entity::attachment::AttachmentKind) -> Self {
        use crm_core::entity::attachment::AttachmentKind as K;
        match k {
            K::Photo => AttachmentKind::Photo,
            K::Document => AttachmentKind::Document,
            K::Signature => AttachmentKind::Signature,
        }
    }
}

/// An attachment's record (its bytes are read with `attachment_content`). The media type, size and
/// SHA-256 are the core's, computed from the content; who uploaded it and when, and when a signature
/// was signed, are stamped by the core.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Attachment {
    pub id: String,
    pub version: u64,
    /// The record it belongs to: its entity type (`job`, `job_step`, ...) and id.
    pub owner_entity: String,
    pub owner_id: String,
    pub kind: Option<AttachmentKind>,
    pub file_name: String,
    pub media_type: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub uploaded_by: Option<String>,
    pub uploaded_at: Option<String>,
    pub signer_name: Option<String>,
    pub signed_at: Option<String>,
}

impl From<Record> for Attachment {
    fn from(r: Record) -> Self {
        use crm_core::entity::attachment::{AttachmentKind as K, fields as af};
        let s = |f: &str| r.str(f).unwrap_or_default().to_owned();
        Attachment {
            id: r.id.to_string(),
            version: r.version,
            owner_entity: s(af::OWNER_ENTITY),
            owner_id: s(af::OWNER_ID),
            kind: r.str(af::KIND).and_then(K::from_key).map(AttachmentKind::from),
            file_name: s(af::FILE_NAME),
            media_type: s(af::MEDIA_TYPE),
            size: int(&r, af::SIZE).unwrap_or(0).max(0) as u64,
            sha256: s(af::SHA256),
            uploaded_by: id(&r, af::UPLOADED_BY),
            uploaded_at: ts(&r, af::UPLOADED_AT),
            signer_name: text(&r, af::SIGNER_NAME),
            signed_at: ts(&r, af::SIGNED_AT),
        }
    }
}

/// An attachment made on this device whose record still waits in the unsynced change-set log: an
/// uploader sends its bytes (`attachment_content`; `size` and `sha256` to declare) with the entry
/// `seq` of `pending_changes`, then `mark_synced`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PendingUpload {
    /// The `seq` of the pending change set that holds the attachment's record.
    pub seq: u64,
    pub attachment: Attachment,
}

/// Which rows an upsert writes (the core's `UpsertMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UpsertMode {
    /// A row bound to no record creates one; a bound row is refused (`already_bound`).
    CreateOnly,
    /// A bound row updates its record; an unbound row is refused (`not_bound`).
    UpdateOnly,
    /// Create or update, as the binding says.
    Upsert,
}

impl From<UpsertMode> for crm_core::service::UpsertMode {
    fn from(m: UpsertMode) -> Self {
        use crm_core::service::UpsertMode as M;
        match m {
            UpsertMode::CreateOnly => M::CreateOnly,
            UpsertMode::UpdateOnly => M::UpdateOnly,
            UpsertMode::Upsert => M::Upsert,
        }
    }
}

/// What became of one upserted row (the core's `RowOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RowOutcome {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

/// One created, updated or refused row of an [`UpsertReport`] (unchanged rows are only counted).
#[derive(Debug, Clone, uniffi::Record)]
pub struct UpsertRow {
    /// 1-based position in the input.
    pub row: u64,
    pub external_id: Option<String>,
    pub outcome: RowOutcome,
    /// The bound record (absent for a refused row).
    pub id: Option<String>,
    /// Every error of a refused row.
    pub errors: Vec<crate::FieldError>,
}

/// The core's per-row report of an upsert.
#[derive(Debug, Clone, uniffi::Record)]
pub struct UpsertReport {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Whether records were written (false for a dry run, and for an all-or-nothing upsert with a
    /// refused row).
    pub applied: bool,
    pub results: Vec<UpsertRow>,
    /// Rows past the reported ones.
    pub results_omitted: u64,
}

impl From<crm_core::service::UpsertReport> for UpsertReport {
    fn from(r: crm_core::service::UpsertReport) -> Self {
        use crm_core::service::RowOutcome as O;
        UpsertReport {
            rows: r.rows,
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            rejected: r.rejected,
            applied: r.applied,
            results_omitted: r.results_omitted,
            results: r
                .results
                .into_iter()
                .map(|row| UpsertRow {
                    row: row.row,
                    external_id: row.external_id,
                    outcome: match row.outcome {
                        O::Created => RowOutcome::Created,
                        O::Updated => RowOutcome::Updated,
                        O::Unchanged => RowOutcome::Unchanged,
                        O::Rejected => RowOutcome::Rejected,
                    },
                    id: row.id.map(|i| i.to_string()),
                    errors: row
                        .errors
                        .into_iter()
                        .map(|f| crate::FieldError {
                            path: f.path,
                            code: f.code,
                            message: f.message,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
