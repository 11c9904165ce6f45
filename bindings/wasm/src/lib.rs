//! # crm-wasm
//!
//! crm-core for browsers and Node, through wasm-bindgen. A thin adapter: values cross as plain JS
//! objects (serde-wasm-bindgen; times as RFC 3339 strings, money as decimal strings), errors become JS
//! `Error`s with a `code` and details, time and ids come from JS (`Date.now`, `crypto.getRandomValues`).
//! The conversions live in [`api`] (JSON level, also built and tested natively); this file only moves
//! values across the JS boundary.

pub mod api;
mod platform;
mod remote;

use crm_core::Error;
use crm_core::service::RoundError;
use serde::Serialize;
use serde_json::Value as Json;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

pub use platform::{JsClock, JsIds};

type JsResult<T> = Result<T, JsValue>;

/// The package's TypeScript types of what crosses the boundary (the functions' attributes name them).
/// A plain const so tests can read it; [`TS_SECTION`] hands it to wasm-bindgen, whose macro reads it in
/// a way rustc's dead-code analysis does not count (outside tests it warns as unused on every target).
#[allow(dead_code)]
const TS_TYPES: &str = r#"
/** One failing field: where, which rule (stable code), and a human message. */
export interface FieldError { path: string; code: string; message: string }
/** What `validate` returns. */
export interface Validation { ok: boolean; errors: FieldError[]; normalized: Record<string, unknown>; changed: string[] }
export interface ValidateOptions { mode?: "create" | "update"; base?: CrmRecord; now?: string; phoneCountryCode?: string; custom?: Record<string, unknown> }
/** A record as every adapter shows it: system fields, readable fields (money as strings, times RFC 3339). */
export interface CrmRecord { id: string; version: number; created_at: string; updated_at: string; custom?: Record<string, unknown>; [field: string]: unknown }
export interface Contribution { group: string; rule: string; count: number; points: number; kind: "rule" | "cap" | "floor" | "reset" }
export interface ScoreResult { score: number; tier: string; temperature: "hot" | "warm" | "cold"; reset: boolean; contributions: Contribution[] }
export interface ScoreInput { lead: RecordInput; activities?: RecordInput[]; model?: ScoringModel; asOf?: string; now?: string; phoneCountryCode?: string; custom?: Record<string, unknown> }
export type Scope = "none" | "own" | "team" | "tenant";
export interface Access { role: string; entity: string; actions: Record<"read" | "create" | "update" | "delete" | "import" | "export" | "approve", Scope>; fields: Record<string, { read: boolean; write: boolean }>; readable: string[]; writable: string[] }
export type RoleInput = string | { name: string; grants: Record<string, unknown> };
export type FilterTree = "all" | { and: FilterTree[] } | { or: FilterTree[] } | { not: FilterTree } | { cmp: { field: string; op: string; value: unknown } } | { in: { field: string; values: unknown[] } } | { is_null: { field: string } } | { search: string };
/** Who acts in a LocalDb: the tenant's system actor, or one of its users. */
export interface ActorRef { tenant: string; user?: string }
export interface ListRequest { q?: string; filter?: FilterTree; sort?: string | { field: string; desc?: boolean }[]; limit?: number; cursor?: string }
export interface LocalDbOptions { now?: string; deterministicIds?: boolean; syncLog?: boolean }
/** A CRM server and the signed-in user's access token (or API key, for `sync` only). */
export interface ServerOptions { serverUrl: string; token: string }
/** `ServerOptions` plus the app's stable id for this installation (1 to 128 characters). */
export interface SyncOptions extends ServerOptions { device: string }
export interface KeptField { entity: string; id: string; field: string; device: unknown; server: unknown }
/** What applying push answers did: change sets accepted, merged (with the fields that kept the server's value), refused (see `syncRejections`), still pending; `upgrade`: the server wants a newer app (nothing lost). */
export interface PushApplied { accepted: number; merged: number; rejected: number; pending: number; upgrade: boolean; kept_server: KeptField[]; synced: number }
/** What applying pull pages did: records written, forgotten, kept because the queue changes them, of unknown types; `reset`: a snapshot started; `more`: pull again. */
export interface PullApplied { upserts: number; removals: number; kept_pending: number; skipped: number; reset: boolean; more: boolean }
export interface SyncReport { push: PushApplied; pull: PullApplied }
/** A sync message in the core's JSON form (crm-core's `sync` module; docs/sync.md). */
export type SyncMessage = Record<string, unknown>;
/** A change set of this device's queue (crm-core's `SyncEntry`). */
export interface SyncEntry { seq: number; change_set: string; actor: string | null; at: string; writes: { entity: string; id: string; op: "insert" | "update" | "delete"; expected_version: number; patch: Record<string, unknown>; base?: Record<string, unknown> }[]; intent?: Record<string, unknown> | null; [k: string]: unknown }
/** A change set a server refused, with its reason, until dismissed. */
export interface SyncRejection { change_set: string; seq: number; logged_at: string; error: { code: string; message: string; [k: string]: unknown }; entry: SyncEntry }
/** Where a save ends (hand it back to `saved`). */
export interface SaveMark { generation: number; audit: number; events: number; sync: number; sync_from: number }
/** A stored row (`record: null`: deleted). */
export interface SavedRow { entity: string; id: string; record: Record<string, unknown> | null }
/** What changed in one tenant since the last save: rows by key, log entries by `seq`. */
export interface Changes { tenant: string; rows: SavedRow[]; audit: { seq: number }[]; events: { seq: number }[]; sync: { seq: number }[]; sync_from: number; sync_seq: number; mark: SaveMark }
/** Everything kept of one tenant, for `restore`. */
export interface Saved { tenant: string; rows: SavedRow[]; audit: unknown[]; events: unknown[]; sync: unknown[]; sync_seq: number }
/** The server did not answer (`status` 0) or refused a sync request: its status, problem `code` and `detail`. */
export interface CrmRemoteError extends Error { name: "CrmRemoteError"; status: number; code: string; detail: string }
/** Money as a decimal string in major units (`"1234.50"`); decimals (quantities, rates) as strings (`"2.5"`). */
export type MoneyString = string;
export type DecimalString = string;
/** One quote line as entered (crm-core's `totals::LineInput`). */
export interface QuoteLineInput { quantity: DecimalString; unit_price: MoneyString; discount_percent?: DecimalString | null; discount_amount?: MoneyString | null; tax_rate?: DecimalString; optional?: boolean }
/** The document discount: none, a percent of the subtotal, or an amount. */
export type DocumentDiscount = "none" | { percent: DecimalString } | { amount: MoneyString };
/** The tenant's rounding policy (organization `quote_rounding`, `quote_rounding_mode`, `prices_include_tax`). */
export interface RoundingPolicy { rounding?: "per_line" | "per_document"; mode?: "half_up" | "half_even"; prices_include_tax?: boolean }
export interface LineTotals { amount: MoneyString; discount_share: MoneyString; tax: MoneyString; total: MoneyString }
export interface TaxLine { rate: DecimalString; base: MoneyString; tax: MoneyString }
/** A quote's totals (crm-core's `totals::Totals`): the shown lines add up to them. */
export interface QuoteTotals { lines: LineTotals[]; subtotal: MoneyString; discount_total: MoneyString; tax_total: MoneyString; total: MoneyString; taxes: TaxLine[]; effective_discount_percent: DecimalString }
/** One approval level of the tenant (organization `quote_approval_rules`). */
export interface ApprovalRule { role: string; total_above?: MoneyString | null; discount_percent_above?: DecimalString | null }
/** The level a quote needs (index into the rules and its role), or nulls: approved on submission. */
export type ApprovalDecision = { level: number; role: string } | { level: null; role: null };
/** A membership form's values; dates are `YYYY-MM-DD`. */
export interface MembershipForm { starts_on?: string | null; ends_on?: string | null; cancelled?: boolean; membership_freezes?: { starts_on: string; ends_on: string }[] }
export interface MembershipStatusOptions { now?: string; settings?: { membership_expiring_days?: number; membership_freeze_extends?: boolean } }
export type MembershipStatus = "upcoming" | "active" | "expiring" | "expired" | "frozen" | "cancelled";
/** The status as of `now` (null while the dates are incomplete or invalid), the end date after freezes, the pending (or last) freeze. */
export interface MembershipStatusResult { status: MembershipStatus | null; ends_on: string | null; frozen_from: string | null; frozen_to: string | null; frozen_days: number | null; errors: FieldError[] }
/** An entity's input or a patch: field name to value, as a form holds them (money and decimals as strings, times RFC 3339, custom fields under `custom`). */
export type RecordInput = Record<string, unknown>;
/** One declared field of an entity type (crm-core's `FieldSpec`), for building forms. */
export interface FieldSchema { name: string; writable: boolean; type: string; required: boolean; max_len?: number; min?: number; max?: number; options?: string[]; not_in_future: boolean }
export interface EntitySchema { entity: string; fields: FieldSchema[] }
/** A scoring rule (crm-core's `scoring::Rule`): fit rules have a `condition` on the lead, engagement rules match activities. */
export interface ScoringRule { name: string; points: number; condition?: FilterTree | string; kind?: string | string[]; direction?: "inbound" | "outbound"; outcome?: string | string[]; limit?: number; min_count?: number; within_days?: number; decay_days?: number }
export interface ScoringGroup { name: string; kind: "fit" | "engagement"; cap?: number; floor?: number; rules: ScoringRule[] }
export interface ScoringTier { name: string; min_score: number; temperature: "hot" | "warm" | "cold" }
/** A scoring model definition (crm-core's `scoring::ScoringModel`), as `defaultScoringModel` returns it. */
export interface ScoringModel { name?: string; total_cap?: number; groups: ScoringGroup[]; tiers: ScoringTier[]; reset_when?: { name: string; condition: FilterTree | string }[] }
/** What publishing a model rescored. */
export interface PublishResult { model: CrmRecord; report: { scanned: number; changed: number; model_version: number } }
export interface StageSummary { key: string; label: string; kind: "open" | "won" | "lost"; count: number; value: MoneyString | null }
/** A domain event of the tenant's outbox. */
export interface CrmEvent { seq: number; tenant: string; id: string; at: string; kind: string; entity: string; entity_id: string | null; payload: Record<string, unknown> }
export interface IntegrityReport { checked: [string, number][]; issues: { entity: string; id: string; path: string; code: string; message: string }[]; issue_count: number; audit_entries: number; audit_broken_at: number | null }
export interface ListResult { items: CrmRecord[]; nextCursor: string | null }
/** An attachment's input: its kind (`document` when absent), file name, signer (signatures only), and the client's claims about the content. */
export interface AttachInput { kind: "photo" | "document" | "signature"; file_name: string; signer_name?: string | null; media_type?: string | null; size?: number | null; sha256?: string | null }
export interface CheckUploadOptions { settings?: { attachment_max_bytes?: number } }
/** What an upload of the bytes would give (crm-core's check, nothing written): the content's facts, the tenant's limit, every field error. */
export interface UploadCheck { ok: boolean; sha256: string; size: number; media_type: string; limit: number; limit_exceeded: boolean; errors: FieldError[] }
export type UpsertMode = "create_only" | "update_only" | "upsert";
/** An upsert from an external system: rows with the entity's external key (`external_id`). */
export interface UpsertRequest { system: string; mode?: UpsertMode; all_or_nothing?: boolean; dry_run?: boolean; rows: RecordInput[] }
export interface UpsertRow { row: number; external_id?: string; outcome: "created" | "updated" | "unchanged" | "rejected"; id?: string; errors?: FieldError[] }
export interface UpsertReport { system: string; mode: UpsertMode; dry_run: boolean; all_or_nothing: boolean; rows: number; created: number; updated: number; unchanged: number; rejected: number; applied: boolean; results: UpsertRow[]; results_omitted: number }

/** What every crm-core error carries: a JS `Error` named `CrmError` with a stable `code`. */
export interface CrmErrorBase extends Error { name: "CrmError" }
/** `validation`: every failing field (also as `fields`, the earlier name of the same list). */
export interface CrmValidationError extends CrmErrorBase { code: "validation"; errors: FieldError[]; fields: FieldError[] }
export interface CrmNotFoundError extends CrmErrorBase { code: "not_found"; entity: string; id: string }
/** `forbidden`: the refused action, and the fields the actor may not read or write (empty when the whole action is refused). */
export interface CrmForbiddenError extends CrmErrorBase { code: "forbidden"; action: string; entity: string; fields: string[] }
/** `conflict`: the version the caller expected and the record's current one. */
export interface CrmConflictError extends CrmErrorBase { code: "conflict"; entity: string; id: string; expected: number; actual: number }
export interface CrmLimitExceededError extends CrmErrorBase { code: "limit_exceeded"; what: string; limit: number }
/** `invalid_query`: the byte offset of the problem in the text query. */
export interface CrmInvalidQueryError extends CrmErrorBase { code: "invalid_query"; position: number }
/** `unavailable`: seconds to wait before trying again. */
export interface CrmUnavailableError extends CrmErrorBase { code: "unavailable"; retry_after: number }
export interface CrmStorageError extends CrmErrorBase { code: "corrupt" | "disk_full" | "internal" }
/** What the package throws for crm-core's errors; narrow it by `code` (check it with `isCrmError`). */
export type CrmError = CrmValidationError | CrmNotFoundError | CrmForbiddenError | CrmConflictError | CrmLimitExceededError | CrmInvalidQueryError | CrmUnavailableError | CrmStorageError;
export type CrmErrorCode = CrmError["code"];
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_SECTION: &str = TS_TYPES;

fn to_js<T: Serialize + ?Sized>(v: &T) -> JsResult<JsValue> {
    let s = serde_wasm_bindgen::Serializer::json_compatible();
    v.serialize(&s)
        .map_err(|e| JsValue::from(js_sys::Error::new(&e.to_string())))
}

fn from_js(v: JsValue, what: &str) -> JsResult<Json> {
    if v.is_undefined() {
        return Ok(Json::Null);
    }
    serde_wasm_bindgen::from_value(v).map_err(|e| {
        err(&crm_core::Error::field(
            what,
            crm_core::error::codes::INVALID_TYPE,
            e.to_string(),
        ))
    })
}

fn from_js_as<T: serde::de::DeserializeOwned + Default>(v: JsValue, what: &str) -> JsResult<T> {
    let j = from_js(v, what)?;
    if j.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(j).map_err(|e| {
        err(&crm_core::Error::field(
            what,
            crm_core::error::codes::INVALID_FORMAT,
            e.to_string(),
        ))
    })
}

/// A crm-core error as a JS `Error` whose `name` is `CrmError`, with the core's description as its
/// properties (`code`; `errors` of a validation error: `[{path, code, message}]`, also as `fields`;
/// `position` of an invalid query; `retry_after` of an unavailable database; ...).
fn err(e: &Error) -> JsValue {
    let js = js_sys::Error::new(&e.to_string());
    js.set_name("CrmError");
    if let Json::Object(details) = api::error_details(e) {
        for (k, v) in details {
            if k == "message" {
                continue;
            }
            if let Ok(v) = to_js(&v) {
                // Setting a property on a fresh Error cannot fail.
                let _ = js_sys::Reflect::set(&js, &JsValue::from_str(&k), &v);
            }
        }
    }
    js.into()
}

fn out<T: Serialize>(r: crm_core::Result<T>) -> JsResult<JsValue> {
    match r {
        Ok(v) => to_js(&v),
        Err(e) => Err(err(&e)),
    }
}

/// Whether `e` is an error this package threw for crm-core (`name` `CrmError`, a string `code`), as a
/// TypeScript type guard: `catch (e) { if (isCrmError(e) && e.code === "validation") e.errors ... }`.
/// Anything else (a `TypeError` for an argument of the wrong JS type, a bug) is not.
#[wasm_bindgen(js_name = isCrmError, unchecked_return_type = "e is CrmError")]
pub fn is_crm_error(#[wasm_bindgen(unchecked_param_type = "unknown")] e: &JsValue) -> bool {
    e.dyn_ref::<js_sys::Error>().is_some_and(|err| err.name() == "CrmError")
        && js_sys::Reflect::get(e, &JsValue::from_str("code")).is_ok_and(|c| c.is_string())
}

/// Normalises and validates an entity (`mode: "create"`, the default) or a patch (`mode: "update"`,
/// optionally over `base`, a record). Returns `{ok, errors: [{path, code, message}], normalized,
/// changed}`; throws only for unusable arguments (unknown entity type, bad options).
#[wasm_bindgen(unchecked_return_type = "Validation")]
pub fn validate(
    entity: &str,
    #[wasm_bindgen(unchecked_param_type = "RecordInput")] input: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "ValidateOptions")] options: Option<JsValue>,
) -> JsResult<JsValue> {
    let input = from_js(input, "input")?;
    let opts = from_js_as(options.unwrap_or(JsValue::UNDEFINED), "options")?;
    out(api::validate(entity, &input, opts, &JsClock))
}

/// The normalised input (trimmed, emails lower-cased, phones in E.164, enums canonical), or throws a
/// `validation` error with every failing field.
#[wasm_bindgen(unchecked_return_type = "Record<string, unknown>")]
pub fn normalize(
    entity: &str,
    #[wasm_bindgen(unchecked_param_type = "RecordInput")] input: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "ValidateOptions")] options: Option<JsValue>,
) -> JsResult<JsValue> {
    let input = from_js(input, "input")?;
    let opts = from_js_as(options.unwrap_or(JsValue::UNDEFINED), "options")?;
    out(api::normalize(entity, &input, opts, &JsClock))
}

/// Scores `{lead, activities?, model?, asOf?, custom?}` with the explanation: `{score, tier,
/// temperature, reset, contributions: [{group, rule, count, points, kind}]}`.
#[wasm_bindgen(js_name = scoreLead, unchecked_return_type = "ScoreResult")]
pub fn score_lead(#[wasm_bindgen(unchecked_param_type = "ScoreInput")] input: JsValue) -> JsResult<JsValue> {
    let input = from_js(input, "input")?;
    out(api::score(&input, &JsClock))
}

/// An entity type's declared fields with their specs (type, required, max_len, options, ...), for
/// building forms: `{entity, fields: [{name, writable, type, ...}]}`.
#[wasm_bindgen(unchecked_return_type = "EntitySchema")]
pub fn schema(entity: &str) -> JsResult<JsValue> {
    out(api::schema(entity))
}

/// The default scoring model's definition (a starting point for drafts).
#[wasm_bindgen(js_name = defaultScoringModel, unchecked_return_type = "ScoringModel")]
pub fn default_scoring_model() -> JsResult<JsValue> {
    to_js(&api::default_scoring_model())
}

/// What a role (a built-in name, or `{name, grants}`) may do with an entity type: `{role, entity,
/// actions: {read: "team", ...}, fields: {name: {read, write}}, readable, writable}`.
#[wasm_bindgen(unchecked_return_type = "Access")]
pub fn access(#[wasm_bindgen(unchecked_param_type = "RoleInput")] role: JsValue, entity: &str) -> JsResult<JsValue> {
    let role = from_js(role, "role")?;
    out(api::access(&role, entity))
}

/// Parses the text filter language (`status:new score>=60`) into its tree; a syntax error throws
/// `invalid_query` with the byte `position` of the problem.
#[wasm_bindgen(js_name = parseFilter, unchecked_return_type = "FilterTree")]
pub fn parse_filter(q: &str) -> JsResult<JsValue> {
    out(api::parse_filter(q))
}

/// A quote's totals, live, with crm-core's exact math (the function that derives stored quotes'
/// totals): `lines` as entered, the document `discount` (`"none"`, `{percent}`, `{amount}`; none when
/// omitted) and the tenant's rounding `policy` (the default when omitted). Money and decimals are
/// strings. Unreadable input throws `validation` naming `lines[i]`, `discount` or `policy`.
#[wasm_bindgen(js_name = quoteTotals, unchecked_return_type = "QuoteTotals")]
pub fn quote_totals(
    #[wasm_bindgen(unchecked_param_type = "QuoteLineInput[]")] lines: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "DocumentDiscount | null")] discount: Option<JsValue>,
    #[wasm_bindgen(unchecked_optional_param_type = "RoundingPolicy | null")] policy: Option<JsValue>,
) -> JsResult<JsValue> {
    let lines = from_js(lines, "lines")?;
    let discount = from_js(discount.unwrap_or(JsValue::UNDEFINED), "discount")?;
    let policy = from_js(policy.unwrap_or(JsValue::UNDEFINED), "policy")?;
    out(api::quote_totals(&lines, &discount, &policy))
}

/// The approval level a quote with this `total` and effective discount percent (`totals.total`,
/// `totals.effective_discount_percent`) needs under the tenant's approval `rules`: `{level, role}`,
/// or nulls when it is approved on submission (crm-core's decision, evaluated again on submit).
#[wasm_bindgen(js_name = approvalLevel, unchecked_return_type = "ApprovalDecision")]
pub fn approval_level(
    #[wasm_bindgen(unchecked_param_type = "ApprovalRule[]")] rules: JsValue,
    #[wasm_bindgen(unchecked_param_type = "MoneyString")] total: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "DecimalString | null")] discount_percent: Option<JsValue>,
) -> JsResult<JsValue> {
    let rules = from_js(rules, "rules")?;
    let total = from_js(total, "total")?;
    let discount = from_js(discount_percent.unwrap_or(JsValue::UNDEFINED), "discountPercent")?;
    out(api::approval_level(&rules, &total, &discount))
}

/// A membership's status, live, as the dates in a form change: `membership` is `{starts_on, ends_on,
/// cancelled?, membership_freezes?: [{starts_on, ends_on}]}`; options `{now?, settings?}` (the tenant's
/// `membership_expiring_days` and `membership_freeze_extends`). crm-core validates the values, derives
/// the freezes (a freeze moves the end date by policy) and computes the status with the function the
/// service uses. Returns `{status, ends_on, frozen_from, frozen_to, frozen_days, errors}`; `status`
/// is null while the dates are incomplete or invalid.
#[wasm_bindgen(js_name = membershipStatus, unchecked_return_type = "MembershipStatusResult")]
pub fn membership_status(
    #[wasm_bindgen(unchecked_param_type = "MembershipForm")] membership: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "MembershipStatusOptions")] options: Option<JsValue>,
) -> JsResult<JsValue> {
    let input = from_js(membership, "membership")?;
    let opts = from_js_as(options.unwrap_or(JsValue::UNDEFINED), "options")?;
    out(api::membership_status(&input, opts, &JsClock))
}

/// Checks a file in the browser before it is uploaded to a record of type `entity`, with the code
/// the upload runs, writing nothing: `input` is `{kind, file_name, signer_name?, media_type?,
/// size?, sha256?}` (what the upload will send), `bytes` the file's content; options `{settings?:
/// {attachment_max_bytes}}` (the tenant's limit; 10 MB when absent). Returns `{ok, sha256, size,
/// media_type, limit, limit_exceeded, errors}`: the SHA-256 to declare with the upload, the size,
/// the media type sniffed from the content, and every field error the upload would give (a photo
/// that is no image, a claimed type or hash the content contradicts, a bad file name, a missing
/// signer). Throws only for unusable arguments (an entity type that takes no attachments).
#[wasm_bindgen(js_name = checkUpload, unchecked_return_type = "UploadCheck")]
pub fn check_upload(
    entity: &str,
    #[wasm_bindgen(unchecked_param_type = "AttachInput")] input: JsValue,
    bytes: &[u8],
    #[wasm_bindgen(unchecked_optional_param_type = "CheckUploadOptions")] options: Option<JsValue>,
) -> JsResult<JsValue> {
    let input = from_js(input, "input")?;
    let opts = from_js_as(options.unwrap_or(JsValue::UNDEFINED), "options")?;
    out(api::check_upload(entity, &input, bytes, opts, &JsClock))
}

/// `ServerOptions`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct ServerArgs {
    server_url: String,
    token: String,
}

/// `SyncOptions`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct SyncArgs {
    server_url: String,
    token: String,
    device: String,
}

/// A CRM running in this tab or process: crm-core's service over its in-memory store. Actors are
/// `{tenant, user?}` (the tenant's system actor when `user` is absent).
#[wasm_bindgen]
#[derive(Debug)]
pub struct LocalDb(api::LocalDb);

#[wasm_bindgen]
impl LocalDb {
    /// Options: `{now?: string, deterministicIds?: boolean}` (a pinned clock and sequential ids, for
    /// tests and replays).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "LocalDbOptions")] options: Option<JsValue>,
    ) -> JsResult<LocalDb> {
        let opts = from_js_as(options.unwrap_or(JsValue::UNDEFINED), "options")?;
        api::LocalDb::new(opts, Arc::new(JsClock), Arc::new(JsIds::default()))
            .map(LocalDb)
            .map_err(|e| err(&e))
    }

    /// The database's current time.
    pub fn now(&self) -> String {
        self.0.now()
    }

    /// Moves the pinned clock.
    #[wasm_bindgen(js_name = setNow)]
    pub fn set_now(&self, iso: &str) -> JsResult<()> {
        self.0.set_now(iso).map_err(|e| err(&e))
    }

    #[wasm_bindgen(js_name = createOrganization, unchecked_return_type = "CrmRecord")]
    pub fn create_organization(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RecordInput")] input: JsValue,
    ) -> JsResult<JsValue> {
        let input = from_js(input, "input")?;
        out(self.0.create_organization(&input))
    }

    #[wasm_bindgen(unchecked_return_type = "CrmRecord")]
    pub fn create(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        #[wasm_bindgen(unchecked_param_type = "RecordInput")] input: JsValue,
    ) -> JsResult<JsValue> {
        let (actor, input) = (from_js(actor, "actor")?, from_js(input, "input")?);
        out(self.0.create(&actor, entity, &input))
    }

    #[wasm_bindgen(unchecked_return_type = "CrmRecord")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        id: &str,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.get(&actor, entity, id))
    }

    /// Applies a patch at the record's expected `version`.
    #[wasm_bindgen(unchecked_return_type = "CrmRecord")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        id: &str,
        version: u32,
        #[wasm_bindgen(unchecked_param_type = "RecordInput")] patch: JsValue,
    ) -> JsResult<JsValue> {
        let (actor, patch) = (from_js(actor, "actor")?, from_js(patch, "patch")?);
        out(self.0.update(&actor, entity, id, u64::from(version), &patch))
    }

    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        id: &str,
        version: u32,
    ) -> JsResult<()> {
        let actor = from_js(actor, "actor")?;
        self.0
            .delete(&actor, entity, id, u64::from(version))
            .map_err(|e| err(&e))
    }

    /// `{q?, filter?, sort?, limit?, cursor?}` → `{items, nextCursor}`.
    #[wasm_bindgen(unchecked_return_type = "ListResult")]
    pub fn list(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "ListRequest")] request: Option<JsValue>,
    ) -> JsResult<JsValue> {
        let (actor, req) = (
            from_js(actor, "actor")?,
            from_js(request.unwrap_or(JsValue::UNDEFINED), "request")?,
        );
        out(self.0.list(&actor, entity, &req))
    }

    /// Runs a workflow transition (`submit`, `approve`, `reject`, `send`, `accept`, `decline`,
    /// `revise`, `duplicate` for quotes) at the record's expected `version`, with the transition's
    /// input (`{rejection_reason}` for a rejection). Returns the record after it (for `revise` and
    /// `duplicate`, the new copy) with its children. A guard's refusal throws `validation` with its
    /// code (`self_approval`, `approval_level`, `expired`, `invalid_transition`, ...).
    #[wasm_bindgen(unchecked_return_type = "CrmRecord")]
    pub fn transition(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        id: &str,
        version: u32,
        name: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "Record<string, unknown>")] input: Option<JsValue>,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        let input = from_js(input.unwrap_or(JsValue::UNDEFINED), "input")?;
        out(self.0.transition(&actor, entity, id, u64::from(version), name, &input))
    }

    /// A record's children by table name (`{quote_lines: [...]}`), each in its declared order.
    #[wasm_bindgen(unchecked_return_type = "Record<string, CrmRecord[]>")]
    pub fn children(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        id: &str,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.children(&actor, entity, id))
    }

    /// Attaches a file's bytes (a photo, a document, a signature) to a record: `input` is
    /// `{kind, file_name, signer_name?}`; the media type is sniffed from the bytes, the size and
    /// SHA-256 computed, the bytes kept in memory with the records. A signature on a job signs it
    /// (`customer_signed`, which its completion guard reads).
    #[wasm_bindgen(unchecked_return_type = "CrmRecord")]
    pub fn attach(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        id: &str,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] input: JsValue,
        content: &[u8],
    ) -> JsResult<JsValue> {
        let (actor, input) = (from_js(actor, "actor")?, from_js(input, "input")?);
        out(self.0.attach(&actor, entity, id, &input, content))
    }

    /// Upserts rows from an external system into `entity`: `request` is `{system, mode?:
    /// "create_only" | "update_only" | "upsert", all_or_nothing?, dry_run?, rows}`, each row with
    /// its `external_id` in that system. The core's upsert, as the HTTP API runs it: a row equal to
    /// what its binding last applied is `unchanged` and writes nothing; the report counts every row
    /// and lists the created, updated and refused ones with their field errors.
    #[wasm_bindgen(unchecked_return_type = "UpsertReport")]
    pub fn upsert(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        #[wasm_bindgen(unchecked_param_type = "UpsertRequest")] request: JsValue,
    ) -> JsResult<JsValue> {
        let (actor, request) = (from_js(actor, "actor")?, from_js(request, "request")?);
        out(self.0.upsert(&actor, entity, &request))
    }

    /// A record's attachments (records of metadata), oldest first.
    #[wasm_bindgen(unchecked_return_type = "CrmRecord[]")]
    pub fn attachments(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        entity: &str,
        id: &str,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.attachments(&actor, entity, id))
    }

    #[wasm_bindgen(js_name = logActivity, unchecked_return_type = "CrmRecord")]
    pub fn log_activity(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        #[wasm_bindgen(unchecked_param_type = "RecordInput")] input: JsValue,
    ) -> JsResult<JsValue> {
        let (actor, input) = (from_js(actor, "actor")?, from_js(input, "input")?);
        out(self.0.log_activity(&actor, &input))
    }

    /// A stored lead's score under the published model, as of `asOf` (now by default), explained.
    #[wasm_bindgen(js_name = explainScore, unchecked_return_type = "ScoreResult")]
    pub fn explain_score(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        lead_id: &str,
        as_of: Option<String>,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.explain_score(&actor, lead_id, as_of.as_deref()))
    }

    /// What a draft model would score a stored lead.
    #[wasm_bindgen(js_name = explainWith, unchecked_return_type = "ScoreResult")]
    pub fn explain_with(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        lead_id: &str,
        #[wasm_bindgen(unchecked_param_type = "ScoringModel")] model: JsValue,
        as_of: Option<String>,
    ) -> JsResult<JsValue> {
        let (actor, model) = (from_js(actor, "actor")?, from_js(model, "model")?);
        out(self.0.explain_with(&actor, lead_id, &model, as_of.as_deref()))
    }

    /// Publishes a draft `scoring_model` record: `{model, report}`.
    #[wasm_bindgen(js_name = publishModel, unchecked_return_type = "PublishResult")]
    pub fn publish_model(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        id: &str,
        version: u32,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.publish_model(&actor, id, u64::from(version)))
    }

    #[wasm_bindgen(js_name = pipelineSummary, unchecked_return_type = "StageSummary[]")]
    pub fn pipeline_summary(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.pipeline_summary(&actor))
    }

    /// Domain events after sequence number `after`.
    #[wasm_bindgen(js_name = eventsSince, unchecked_return_type = "CrmEvent[]")]
    pub fn events_since(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        after: u32,
        limit: u32,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.events_since(&actor, u64::from(after), limit))
    }

    #[wasm_bindgen(js_name = integrityCheck, unchecked_return_type = "IntegrityReport")]
    pub fn integrity_check(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.integrity_check(&actor))
    }

    /// Starts this database as a new device of the server's user: fetches
    /// `GET /api/v1/sync/provision` with `token` and writes the organization and the user (see
    /// `provision`). Resolves to the user's actor reference; rejects with a `CrmRemoteError` when
    /// the server cannot be reached or refuses, or a `CrmError` when the answer does not decode.
    #[wasm_bindgen(unchecked_return_type = "Promise<ActorRef>")]
    pub fn connect(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ServerOptions")] options: JsValue,
    ) -> JsResult<js_sys::Promise> {
        let o: ServerArgs = from_js_as(options, "options")?;
        let fetch = remote::Fetch::new(&o.server_url, &o.token).map_err(|e| err(&e))?;
        let svc = self.0.service();
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let p = fetch.provision().await.map_err(|e| remote::remote_error(&e))?;
            let actor = svc.apply_provision(&p).await.map_err(|e| err(&e))?;
            to_js(&api::actor_ref(&actor))
        }))
    }

    /// Writes a provision (the JSON of `GET /api/v1/sync/provision`) into this database, for apps
    /// that bring their own transport; the device user's actor reference.
    #[wasm_bindgen(unchecked_return_type = "ActorRef")]
    pub fn provision(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SyncMessage")] provision: JsValue,
    ) -> JsResult<JsValue> {
        let p = from_js(provision, "provision")?;
        out(self.0.apply_provision(&p))
    }

    /// One sync round with the server, as `actor` (the device's user): pushes the queued change
    /// sets (each replayed on the server as the use case that made it), applies the answers, then
    /// pulls until caught up. Needs a database opened with `syncLog: true`. What was applied before
    /// a failure stays applied; the next round continues.
    #[wasm_bindgen(unchecked_return_type = "Promise<SyncReport>")]
    pub fn sync(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SyncOptions")] options: JsValue,
    ) -> JsResult<js_sys::Promise> {
        let actor = self.0.actor(&from_js(actor, "actor")?).map_err(|e| err(&e))?;
        let o: SyncArgs = from_js_as(options, "options")?;
        let fetch = remote::Fetch::new(&o.server_url, &o.token).map_err(|e| err(&e))?;
        let svc = self.0.service();
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            match svc.sync_round(&actor, &o.device, &fetch).await {
                Ok(report) => to_js(&report),
                Err(RoundError::Local(e)) => Err(err(&e)),
                Err(RoundError::Remote(e)) => Err(remote::remote_error(&e)),
            }
        }))
    }

    /// The body of the next push (`POST /api/v1/sync/push`): the oldest queued change sets, at
    /// most `limit`. Reads only; empty `entries`: nothing to push.
    #[wasm_bindgen(js_name = preparePush, unchecked_return_type = "SyncMessage")]
    pub fn prepare_push(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        device: &str,
        limit: u32,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.prepare_push(&actor, device, limit))
    }

    /// Applies the server's answer to a push from `preparePush`. Safe to repeat.
    #[wasm_bindgen(js_name = applyPushAnswer, unchecked_return_type = "PushApplied")]
    pub fn apply_push_answer(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SyncMessage")] request: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SyncMessage")] answer: JsValue,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self
            .0
            .apply_push_answer(&actor, &from_js(request, "request")?, &from_js(answer, "answer")?))
    }

    /// The cursor to pull with next (`GET /api/v1/sync/pull?cursor=`); null before the first page.
    #[wasm_bindgen(js_name = pullCursor, unchecked_return_type = "string | null")]
    pub fn pull_cursor(&self, #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.pull_cursor(&actor))
    }

    /// Applies a pull page as the server sent it, with its cursor. Pull again while `more`.
    #[wasm_bindgen(js_name = applyPull, unchecked_return_type = "PullApplied")]
    pub fn apply_pull(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SyncMessage")] page: JsValue,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.apply_pull(&actor, &from_js(page, "page")?))
    }

    /// The change sets no server has acknowledged yet, oldest first (at most `limit`).
    #[wasm_bindgen(js_name = pendingChanges, unchecked_return_type = "SyncEntry[]")]
    pub fn pending_changes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        limit: u32,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.pending_changes(&actor, limit))
    }

    /// The change sets a server refused, with the reasons, until dismissed.
    #[wasm_bindgen(js_name = syncRejections, unchecked_return_type = "SyncRejection[]")]
    pub fn sync_rejections(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        limit: u32,
    ) -> JsResult<JsValue> {
        let actor = from_js(actor, "actor")?;
        out(self.0.sync_rejections(&actor, limit))
    }

    #[wasm_bindgen(js_name = dismissSyncRejection)]
    pub fn dismiss_sync_rejection(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ActorRef")] actor: JsValue,
        change_set: &str,
    ) -> JsResult<()> {
        let actor = from_js(actor, "actor")?;
        self.0.dismiss_sync_rejection(&actor, change_set).map_err(|e| err(&e))
    }

    /// What changed since the last `saved`, per tenant, for the host to store (rows by
    /// `[tenant, entity, id]`, log entries by `[tenant, seq]`). `openLocalDb` does this for you.
    #[wasm_bindgen(unchecked_return_type = "Changes[]")]
    pub fn changes(&self) -> JsResult<JsValue> {
        out(self.0.changes())
    }

    /// Marks a tenant's changes (up to `mark`) as stored.
    pub fn saved(
        &self,
        tenant: &str,
        #[wasm_bindgen(unchecked_param_type = "SaveMark")] mark: JsValue,
    ) -> JsResult<()> {
        let mark = from_js(mark, "mark")?;
        self.0.saved(tenant, &mark).map_err(|e| err(&e))
    }

    /// Puts back the bytes of an attachment (`sha256`, as its record names them) that the host
    /// kept: this database holds attachment bytes in memory only. `openLocalDb` does this for you.
    #[wasm_bindgen(js_name = putBlob)]
    pub fn put_blob(&self, tenant: &str, sha256: &str, bytes: &[u8]) -> JsResult<()> {
        self.0.put_blob(tenant, sha256, bytes).map_err(|e| err(&e))
    }

    /// Rebuilds a tenant from what the host stored of it, replacing what this database holds of
    /// it. A row that does not decode refuses the whole restore.
    pub fn restore(&self, #[wasm_bindgen(unchecked_param_type = "Saved")] saved: JsValue) -> JsResult<()> {
        let saved = from_js(saved, "saved")?;
        self.0.restore(&saved).map_err(|e| err(&e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crm_core::error::codes;
    use std::collections::BTreeSet;

    /// The members a `Crm*Error` interface of [`TS_TYPES`] declares (besides `code`) for a code.
    fn declared(code: &str) -> BTreeSet<String> {
        let decl = TS_TYPES
            .lines()
            .find(|l| l.contains("extends CrmErrorBase {") && l.contains(&format!("\"{code}\"")))
            .unwrap_or_else(|| panic!("no CrmError interface declares code {code}"));
        let body = decl.rsplit_once('{').unwrap().1.trim_end().trim_end_matches('}');
        body.split(';')
            .filter_map(|m| m.split_once(':').map(|(name, _)| name.trim().to_owned()))
            .filter(|name| !name.is_empty() && name != "code")
            .collect()
    }

    /// The TypeScript error types show exactly the members crm-core's description gives each kind (as
    /// `err` sets them on the thrown Error): a member the core adds or drops fails here until the
    /// declarations follow.
    #[test]
    fn typescript_error_types_are_the_cores_details() {
        let kinds = [
            Error::field("email", codes::INVALID_EMAIL, "not an email"),
            Error::not_found("lead", "x"),
            Error::forbidden("update", "lead", vec!["score".into()]),
            Error::Conflict {
                entity: "lead".into(),
                id: "x".into(),
                expected: 1,
                actual: 2,
            },
            Error::LimitExceeded {
                what: "rows".into(),
                limit: 10,
            },
            Error::invalid_query("bad", 3),
            Error::unavailable(2, "locked"),
            Error::corrupt("x"),
            Error::disk_full("x"),
            Error::internal("x"),
        ];
        for e in kinds {
            let details = api::error_details(&e);
            let shown: BTreeSet<String> = details
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "code" && *k != "message")
                .cloned()
                .collect();
            assert_eq!(declared(e.code()), shown, "{}", e.code());
        }
    }
}
