//! Quotes: priced offers to a customer, made of ordered lines, with totals derived exactly by the
//! tenant's rounding policy ([`totals`]), an approval workflow whose rules are tenant data
//! ([`approval`]), revisions (a sent quote never changes: a revision supersedes it), and the
//! customer's lifetime value rolled up from accepted quotes.
//!
//! States: `draft` → submit → `approved` (no approval rule applies) or `pending_approval` → approve
//! → `approved` (or reject → `draft`, with the reason) → send → `sent` → accept → `accepted` or
//! decline → `declined`; revise moves a `sent` quote to `superseded` and returns its next revision
//! (a draft). `expired` is computed: a sent quote past its `valid_until`. An edit of a quote pending
//! approval or approved sends it back to `draft`; sent, accepted, declined and superseded quotes
//! are locked.

pub mod approval;
pub mod document;
pub mod totals;

use super::customer::LIFETIME_VALUE;
use super::people::org_fields;
use super::{EntityRules, Need, declare, keyed_enum};
use crate::access::Action;
use crate::computed::{ComputeCtx, ComputedDef};
use crate::decimal::{Decimal, Rounding};
use crate::error::{Error, FieldError, Result, codes};
use crate::query::{Filter, Op};
use crate::record::Record;
use crate::schema::{ChildOf, EntityDef, FieldDef as F, Rollup, Sum};
use crate::value::{FieldType as T, Money, Value};
use crate::workflow::{Decision, GuardCtx, Refusal, Spawn, Stamp, Transition, Workflow};
use totals::{DocumentDiscount, LineInput, Policy, RoundingLevel};

declare!(QUOTE, quote);
declare!(QUOTE_LINE, quote_line);

keyed_enum!(
    /// A quote's stored state (see the module docs); `expired` is computed on top of `sent`.
    QuoteStatus {
        Draft = "draft",
        PendingApproval = "pending_approval",
        Approved = "approved",
        Sent = "sent",
        Accepted = "accepted",
        Declined = "declined",
        Superseded = "superseded",
    }
);

/// The computed `state`: the stored status, or `expired` for a sent quote past its validity.
pub const STATES: &[&str] = &[
    "draft",
    "pending_approval",
    "approved",
    "sent",
    "accepted",
    "declined",
    "superseded",
    EXPIRED,
];
pub const EXPIRED: &str = "expired";

/// Field names of a quote and its lines.
pub mod fields {
    pub const NUMBER: &str = "number";
    pub const REVISION: &str = "revision";
    /// Derived: `Q-00042-R2`, unique per tenant.
    pub const REFERENCE: &str = "reference";
    pub const CONTACT_ID: &str = "contact_id";
    pub const COMPANY_ID: &str = "company_id";
    pub const LEAD_ID: &str = "lead_id";
    pub const VALID_UNTIL: &str = "valid_until";
    pub const STATUS: &str = "status";
    pub const DISCOUNT_PERCENT: &str = "discount_percent";
    pub const DISCOUNT_AMOUNT: &str = "discount_amount";
    pub const CURRENCY: &str = "currency";
    pub const SUBTOTAL: &str = "subtotal";
    pub const DISCOUNT_TOTAL: &str = "discount_total";
    pub const TAX_TOTAL: &str = "tax_total";
    pub const TOTAL: &str = "total";
    /// Derived: per tax rate `[{rate, base, tax}]`.
    pub const TAXES: &str = "taxes";
    /// Derived: every discount as a percent of the undiscounted amount (what approval compares).
    pub const EFFECTIVE_DISCOUNT: &str = "effective_discount_percent";
    pub const LINE_COUNT: &str = "line_count";
    pub const APPROVAL_LEVEL: &str = "approval_level";
    pub const SUBMITTED_BY: &str = "submitted_by";
    pub const SUBMITTED_AT: &str = "submitted_at";
    pub const APPROVED_BY: &str = "approved_by";
    pub const APPROVED_AT: &str = "approved_at";
    pub const REJECTION_REASON: &str = "rejection_reason";
    pub const SENT_AT: &str = "sent_at";
    pub const DECIDED_AT: &str = "decided_at";
    pub const SUPERSEDES_ID: &str = "supersedes_id";
    /// Computed: see [`super::STATES`].
    pub const STATE: &str = "state";

    pub const QUOTE_ID: &str = "quote_id";
    pub const POSITION: &str = "position";
    pub const QUANTITY: &str = "quantity";
    pub const UNIT_PRICE: &str = "unit_price";
    pub const TAX_RATE: &str = "tax_rate";
    pub const OPTIONAL: &str = "optional";
    /// Derived line amounts (see [`super::totals::LineTotals`]).
    pub const AMOUNT: &str = "amount";
    pub const DISCOUNT_SHARE: &str = "discount_share";
    pub const TAX: &str = "tax";
}
use fields::*;

fn quote() -> EntityDef {
    let money = |name| F::new(name, T::Money).derived().default(Money(0));
    let mut e = EntityDef::new("quote", "quotes")
        .field(F::new(NUMBER, T::Integer).read_only())
        .field(F::new(REVISION, T::Integer).read_only().default(1i64))
        .field(F::new(REFERENCE, T::Text).max_len(40).derived().unique())
        .field(F::new("title", T::Text).max_len(200))
        .field(F::new(CONTACT_ID, T::Ref("contact")))
        .field(F::new(COMPANY_ID, T::Ref("company")))
        .field(F::new(LEAD_ID, T::Ref("lead")))
        .field(F::new("owner_id", T::Ref("user")))
        .field(F::new("team_id", T::Ref("team")))
        .field(F::new("external_id", T::Text).max_len(100).unique())
        .field(F::new(VALID_UNTIL, T::Date).required())
        .field(F::new("notes", T::Text).max_len(10_000))
        .field(F::new("terms", T::Text).max_len(20_000))
        .field(F::new(DISCOUNT_PERCENT, T::Decimal).range(Some(0), Some(100)))
        .field(F::new(DISCOUNT_AMOUNT, T::Money).range(Some(0), None))
        .field(
            F::new(STATUS, T::Enum)
                .options(QuoteStatus::KEYS)
                .read_only()
                .default(QuoteStatus::Draft.key()),
        )
        .field(F::new(CURRENCY, T::Text).max_len(3).derived())
        .field(money(SUBTOTAL))
        .field(money(DISCOUNT_TOTAL))
        .field(money(TAX_TOTAL))
        .field(money(TOTAL))
        .field(F::new(TAXES, T::Json).derived())
        .field(F::new(EFFECTIVE_DISCOUNT, T::Decimal).derived().default(Decimal::ZERO))
        .field(F::new(LINE_COUNT, T::Integer).derived().default(0i64))
        .field(F::new(APPROVAL_LEVEL, T::Text).max_len(64).read_only())
        .field(F::new(SUBMITTED_BY, T::Ref("user")).read_only())
        .field(F::new(SUBMITTED_AT, T::Timestamp).read_only())
        .field(F::new(APPROVED_BY, T::Ref("user")).read_only())
        .field(F::new(APPROVED_AT, T::Timestamp).read_only())
        .field(F::new(REJECTION_REASON, T::Text).max_len(2000).read_only())
        .field(F::new(SENT_AT, T::Timestamp).read_only())
        .field(F::new(DECIDED_AT, T::Timestamp).read_only())
        .field(F::new(SUPERSEDES_ID, T::Ref("quote")).read_only());
    super::scoped(&mut e);
    e.since = 5;
    e.rules = &QuoteRules;
    e.search_fields = &[REFERENCE, "title"];
    e.check = Some(check_quote);
    e.indexes = vec![
        &[NUMBER, REVISION],
        &[STATUS, VALID_UNTIL],
        &[CONTACT_ID, STATUS],
        &[COMPANY_ID, STATUS],
    ];
    e.workflow = Some(&QUOTE_WORKFLOW);
    // A signed acceptance, a site photo.
    e.attachments = Some(Default::default());
    e.computed = vec![ComputedDef {
        name: STATE,
        options: STATES,
        eval: |r, cx| state(r, cx.today()),
        expand: expand_state,
        sort_by: &[STATUS, VALID_UNTIL],
    }];
    let accepted = (STATUS, QuoteStatus::Accepted.key());
    e.rollups = vec![
        Rollup::Sum(Sum {
            via: CONTACT_ID,
            field: LIFETIME_VALUE,
            sum: TOTAL,
            when: accepted,
        }),
        Rollup::Sum(Sum {
            via: COMPANY_ID,
            field: LIFETIME_VALUE,
            sum: TOTAL,
            when: accepted,
        }),
    ];
    e
}

fn quote_line() -> EntityDef {
    let money = |name| F::new(name, T::Money).derived().default(Money(0));
    let mut e = EntityDef::new("quote_line", "quote_lines")
        .field(F::new(QUOTE_ID, T::Ref("quote")).required())
        .field(F::new(POSITION, T::Integer).range(Some(1), Some(100_000)))
        .field(F::new("description", T::Text).required().max_len(2000))
        .field(F::new(QUANTITY, T::Decimal).required().range(Some(0), None))
        .field(F::new("unit", T::Text).max_len(20))
        .field(F::new(UNIT_PRICE, T::Money).required().range(Some(0), None))
        .field(F::new(DISCOUNT_PERCENT, T::Decimal).range(Some(0), Some(100)))
        .field(F::new(DISCOUNT_AMOUNT, T::Money).range(Some(0), None))
        .field(
            F::new(TAX_RATE, T::Decimal)
                .range(Some(0), Some(100))
                .default(Decimal::ZERO),
        )
        .field(F::new(OPTIONAL, T::Bool).required().default(false))
        .field(F::new("catalogue_ref", T::Text).max_len(100))
        .field(money(AMOUNT))
        .field(money(DISCOUNT_SHARE))
        .field(money(TAX))
        .field(money(TOTAL));
    e.since = 5;
    e.child_of = Some(ChildOf {
        parent: "quote",
        field: QUOTE_ID,
        order_by: &[POSITION],
    });
    e.check = Some(check_line);
    e.indexes = vec![&[QUOTE_ID, POSITION]];
    e
}

/// The quote lifecycle (see the module docs).
pub static QUOTE_WORKFLOW: Workflow = Workflow {
    field: STATUS,
    locked: &["sent", "accepted", "declined", "superseded"],
    reenter_on_edit: Some((&["pending_approval", "approved"], "draft")),
    create_stamps: &[(NUMBER, Stamp::NextSequence)],
    transitions: &[
        Transition {
            stamps: &[(SUBMITTED_BY, Stamp::Actor), (SUBMITTED_AT, Stamp::Now)],
            guard: Some(submittable),
            decide: Some(approval_needed),
            ..Transition::new("submit", Action::Submit, &["draft"], None, "quote.submitted")
        },
        Transition {
            stamps: &[(APPROVED_BY, Stamp::Actor), (APPROVED_AT, Stamp::Now)],
            guard: Some(approver),
            ..Transition::new(
                "approve",
                Action::Approve,
                &["pending_approval"],
                Some("approved"),
                "quote.approved",
            )
        },
        Transition {
            accepts: &[REJECTION_REASON],
            guard: Some(rejecter),
            ..Transition::new(
                "reject",
                Action::Reject,
                &["pending_approval"],
                Some("draft"),
                "quote.rejected",
            )
        },
        Transition {
            stamps: &[(SENT_AT, Stamp::Now)],
            guard: Some(not_expired),
            ..Transition::new("send", Action::Send, &["approved"], Some("sent"), "quote.sent")
        },
        Transition {
            stamps: &[(DECIDED_AT, Stamp::Now)],
            guard: Some(not_expired),
            ..Transition::new("accept", Action::Accept, &["sent"], Some("accepted"), "quote.accepted")
        },
        Transition {
            stamps: &[(DECIDED_AT, Stamp::Now)],
            ..Transition::new(
                "decline",
                Action::Decline,
                &["sent"],
                Some("declined"),
                "quote.declined",
            )
        },
        Transition {
            spawn: Some(Spawn {
                keep: &[NUMBER],
                stamps: &[(REVISION, Stamp::Increment)],
                link: Some(SUPERSEDES_ID),
            }),
            ..Transition::new("revise", Action::Update, &["sent"], Some("superseded"), "quote.revised")
        },
        Transition {
            spawn: Some(Spawn {
                keep: &[],
                stamps: &[(NUMBER, Stamp::NextSequence)],
                link: None,
            }),
            ..Transition::new("duplicate", Action::Create, QuoteStatus::KEYS, None, "quote.duplicated")
        },
    ],
};

/// The computed state of a quote on `today`.
pub fn state(r: &Record, today: time::Date) -> &'static str {
    let status = r
        .str(STATUS)
        .and_then(QuoteStatus::from_key)
        .unwrap_or(QuoteStatus::Draft);
    if status == QuoteStatus::Sent && is_past(r, today) {
        return EXPIRED;
    }
    status.key()
}

fn is_past(r: &Record, today: time::Date) -> bool {
    matches!(r.get(VALID_UNTIL), Some(Value::Date(d)) if *d < today)
}

fn expand_state(option: &str, cx: &ComputeCtx) -> Filter {
    let before_today = Filter::cmp(VALID_UNTIL, Op::Lt, Value::Date(cx.today()));
    match option {
        EXPIRED => Filter::and([Filter::eq(STATUS, "sent"), before_today]),
        "sent" => Filter::and([
            Filter::eq(STATUS, "sent"),
            Filter::cmp(VALID_UNTIL, Op::Ge, Value::Date(cx.today())),
        ]),
        other => Filter::eq(STATUS, other),
    }
}

/// A quote names its customer (a contact or a company), and takes one kind of document discount.
fn check_quote(r: &Record, errs: &mut Vec<FieldError>) {
    if r.get(CONTACT_ID).is_none_or(Value::is_null) && r.get(COMPANY_ID).is_none_or(Value::is_null) {
        errs.push(FieldError::new(
            CONTACT_ID,
            codes::REQUIRED,
            "a quote is for a contact or a company",
        ));
    }
    one_discount(r, errs);
}

/// A line's own discount is a percent or an amount, never both, and never more than the line.
fn check_line(r: &Record, errs: &mut Vec<FieldError>) {
    one_discount(r, errs);
    if let (Some(Value::Money(a)), Some(Value::Money(p)), Some(Value::Decimal(q))) =
        (r.get(DISCOUNT_AMOUNT), r.get(UNIT_PRICE), r.get(QUANTITY))
        && Decimal::from(a.0) > Decimal::from(p.0) * q
    {
        errs.push(FieldError::new(
            DISCOUNT_AMOUNT,
            codes::TOO_LARGE,
            "more than the line is worth",
        ));
    }
}

fn one_discount(r: &Record, errs: &mut Vec<FieldError>) {
    let set = |f| r.get(f).is_some_and(|v| !v.is_null());
    if set(DISCOUNT_PERCENT) && set(DISCOUNT_AMOUNT) {
        errs.push(FieldError::new(
            DISCOUNT_AMOUNT,
            codes::INVALID_FORMAT,
            "a discount is a percent or an amount, not both",
        ));
    }
}

/// The tenant's rounding policy, from its settings.
pub fn policy(org: Option<&Record>) -> Policy {
    let get = |f| org.and_then(|o| o.str(f));
    Policy {
        rounding: match get(org_fields::QUOTE_ROUNDING) {
            Some("per_document") => RoundingLevel::PerDocument,
            _ => RoundingLevel::PerLine,
        },
        mode: match get(org_fields::QUOTE_ROUNDING_MODE) {
            Some("half_even") => Rounding::HalfEven,
            _ => Rounding::HalfUp,
        },
        prices_include_tax: org.and_then(|o| o.get(org_fields::PRICES_INCLUDE_TAX)) == Some(&Value::Bool(true)),
    }
}

/// The tenant's approval levels (none when unset or unreadable; the organization's check refuses
/// unreadable rules when they are written).
pub fn approval_rules(org: Option<&Record>) -> Vec<approval::ApprovalRule> {
    match org.and_then(|o| o.get(org_fields::QUOTE_APPROVAL_RULES)) {
        Some(Value::Json(j)) => approval::parse(j, org_fields::QUOTE_APPROVAL_RULES).unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn decimal(r: &Record, f: &str) -> Option<Decimal> {
    match r.get(f) {
        Some(Value::Decimal(d)) => Some(*d),
        _ => None,
    }
}

fn money(r: &Record, f: &str) -> Option<Money> {
    match r.get(f) {
        Some(Value::Money(m)) => Some(*m),
        _ => None,
    }
}

/// A line as the totals read it.
fn line_input(l: &Record) -> LineInput {
    LineInput {
        quantity: decimal(l, QUANTITY).unwrap_or_default(),
        unit_price: money(l, UNIT_PRICE).unwrap_or_default(),
        discount_percent: decimal(l, DISCOUNT_PERCENT),
        discount_amount: money(l, DISCOUNT_AMOUNT),
        tax_rate: decimal(l, TAX_RATE).unwrap_or_default(),
        optional: l.get(OPTIONAL) == Some(&Value::Bool(true)),
    }
}

/// Totals are derived from the lines; the currency is the tenant's; lines without a position go last.
#[derive(Debug)]
pub struct QuoteRules;

impl EntityRules for QuoteRules {
    fn needs(&self) -> &'static [Need] {
        &[Need::Settings]
    }

    fn document_refs(&self) -> &'static [&'static str] {
        &[CONTACT_ID, COMPANY_ID]
    }

    fn document(&self, cx: &super::DocumentCtx<'_>) -> Option<String> {
        Some(document::render(cx))
    }

    fn has_document(&self) -> bool {
        true
    }

    fn derive_from_children(
        &self,
        quote: &mut Record,
        children: &mut [(&'static EntityDef, Vec<Record>)],
        cx: &ComputeCtx,
    ) -> Result<()> {
        let mut none = Vec::new();
        let lines = children
            .iter_mut()
            .find(|(d, _)| d.name == QUOTE_LINE.name)
            .map_or(&mut none, |(_, rows)| rows);
        let mut next = lines
            .iter()
            .filter_map(|l| l.get(POSITION).and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        for l in lines.iter_mut().filter(|l| l.get(POSITION).is_none_or(Value::is_null)) {
            next += 1;
            l.set(POSITION, next);
        }
        lines.sort_by_key(|l| (l.get(POSITION).and_then(Value::as_i64), l.id));
        let discount = match (decimal(quote, DISCOUNT_PERCENT), money(quote, DISCOUNT_AMOUNT)) {
            (Some(p), _) => DocumentDiscount::Percent(p),
            (None, Some(a)) => DocumentDiscount::Amount(a),
            _ => DocumentDiscount::None,
        };
        let inputs: Vec<LineInput> = lines.iter().map(line_input).collect();
        let t = totals::compute(&inputs, discount, &policy(cx.org.as_deref())).map_err(Error::from)?;
        for (l, lt) in lines.iter_mut().zip(&t.lines) {
            l.set(AMOUNT, lt.amount);
            l.set(DISCOUNT_SHARE, lt.discount_share);
            l.set(TAX, lt.tax);
            l.set(TOTAL, lt.total);
        }
        quote.set(SUBTOTAL, t.subtotal);
        quote.set(DISCOUNT_TOTAL, t.discount_total);
        quote.set(TAX_TOTAL, t.tax_total);
        quote.set(TOTAL, t.total);
        quote.set(EFFECTIVE_DISCOUNT, t.effective_discount_percent);
        quote.set(TAXES, Value::Json(serde_json::to_value(&t.taxes).unwrap_or_default()));
        quote.set(LINE_COUNT, t.lines.len() as i64);
        let currency = cx
            .org
            .as_ref()
            .and_then(|o| o.str("currency"))
            .unwrap_or("USD")
            .to_owned();
        quote.set(CURRENCY, currency);
        if let (Some(n), Some(r)) = (
            quote.get(NUMBER).and_then(Value::as_i64),
            quote.get(REVISION).and_then(Value::as_i64),
        ) {
            quote.set(REFERENCE, format!("Q-{n:05}-R{r}"));
        }
        Ok(())
    }
}

/// A quote is submitted with at least one line and before it expires.
fn submittable(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if cx.record.get(LINE_COUNT).and_then(Value::as_i64).unwrap_or(0) == 0 {
        return Err(Refusal::new(
            LINE_COUNT,
            codes::REQUIRED,
            "a quote needs at least one line",
        ));
    }
    not_expired(cx)
}

/// Sending and accepting an expired quote is refused (revise it with a new validity instead).
fn not_expired(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if is_past(cx.record, cx.ctx.vctx.today) {
        return Err(Refusal::new(VALID_UNTIL, codes::EXPIRED, "the quote has expired"));
    }
    Ok(())
}

/// Submission: the tenant's rules, evaluated on the submitted version, decide whether the quote is
/// approved at once or waits for a level.
fn approval_needed(cx: &GuardCtx<'_>) -> std::result::Result<Decision, Refusal> {
    let rules = approval_rules(cx.ctx.settings.as_ref());
    let total = money(cx.record, TOTAL).unwrap_or_default();
    let discount = decimal(cx.record, EFFECTIVE_DISCOUNT).unwrap_or_default();
    let cleared = (REJECTION_REASON, Value::Null);
    Ok(match approval::required_level(&rules, total, discount) {
        None => Decision {
            to: QuoteStatus::Approved.key(),
            set: vec![
                (APPROVAL_LEVEL, Value::Null),
                (APPROVED_BY, Value::Null),
                (APPROVED_AT, Value::Timestamp(cx.now)),
                cleared,
            ],
        },
        Some(level) => Decision {
            to: QuoteStatus::PendingApproval.key(),
            set: vec![
                (APPROVAL_LEVEL, Value::Text(rules[level].role.clone())),
                (APPROVED_BY, Value::Null),
                (APPROVED_AT, Value::Null),
                cleared,
            ],
        },
    })
}

/// Who decides a pending quote: not its submitter, and a role at or above the level it needs.
fn approver(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    if cx.actor.is_some() && cx.before.id_of(SUBMITTED_BY) == cx.actor {
        return Err(Refusal::new(
            SUBMITTED_BY,
            codes::SELF_APPROVAL,
            "the submitter of a quote may not decide on it",
        ));
    }
    let level = cx.before.str(APPROVAL_LEVEL).unwrap_or(crate::access::builtin::ADMIN);
    let rules = approval_rules(cx.ctx.settings.as_ref());
    if !approval::may_approve(&rules, level, cx.role) {
        return Err(Refusal::new(
            APPROVAL_LEVEL,
            codes::APPROVAL_LEVEL,
            format!("this quote needs approval by {level}"),
        ));
    }
    Ok(())
}

/// A rejection is decided like an approval, and says why.
fn rejecter(cx: &GuardCtx<'_>) -> std::result::Result<(), Refusal> {
    approver(cx)?;
    if cx.record.str(REJECTION_REASON).is_none_or(|s| s.trim().is_empty()) {
        return Err(Refusal::new(
            REJECTION_REASON,
            codes::REQUIRED,
            "say why the quote is rejected",
        ));
    }
    Ok(())
}

/// The organization's quote settings are readable (approval rules parse).
pub(crate) fn check_settings(org: &Record, errs: &mut Vec<FieldError>) {
    if let Some(Value::Json(j)) = org.get(org_fields::QUOTE_APPROVAL_RULES)
        && let Err(e) = approval::parse(j, org_fields::QUOTE_APPROVAL_RULES)
    {
        errs.extend(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_computed_states_are_the_stored_ones_and_expired() {
        let mut want: Vec<&str> = QuoteStatus::KEYS.to_vec();
        want.push(EXPIRED);
        assert_eq!(STATES, want.as_slice());
        for locked in QUOTE_WORKFLOW.locked {
            assert!(QuoteStatus::from_key(locked).is_some(), "{locked}");
        }
    }
}
