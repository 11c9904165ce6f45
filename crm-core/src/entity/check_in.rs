//! Check-ins: a client arriving at the front desk (or a kiosk), recorded by the check-in use case
//! (`Service::check_in`) with what the tenant's policy made of their membership. The policy is tenant
//! data on the organization (see [`POLICY_DEFAULTS`]); [`decide`] is the one place it is applied.

use super::membership::{MembershipStatus, fields as m};
use super::people::org_fields;
use super::{declare, keyed_enum};
use crate::computed::ComputeCtx;
use crate::error::Result;
use crate::record::Record;
use crate::schema::{EntityDef, Exposure, FieldDef as F, Fold, Rollup};
use crate::value::{FieldType as T, Value};

declare!(CHECK_IN, check_in);

keyed_enum!(
    /// What a check-in came to.
    Outcome {
        /// Let in.
        Allowed = "allowed",
        /// Let in, with a warning for the desk (an expired membership under a lenient policy).
        Warned = "warned",
        /// Not let in, with the reason.
        Refused = "refused",
    }
);

keyed_enum!(
    /// What the tenant's policy does with one kind of check-in.
    Policy {
        Allow = "allow",
        Warn = "warn",
        Refuse = "refuse",
    }
);

/// The policy settings on the organization and their defaults: an expired membership is let in with
/// a warning (the desk offers the renewal); a frozen one, a client without a running membership and
/// a used-up visit allowance are refused.
pub const POLICY_DEFAULTS: [(&str, Policy); 4] = [
    (org_fields::CHECK_IN_EXPIRED, Policy::Warn),
    (org_fields::CHECK_IN_FROZEN, Policy::Refuse),
    (org_fields::CHECK_IN_NO_MEMBERSHIP, Policy::Refuse),
    (org_fields::CHECK_IN_VISITS_USED_UP, Policy::Refuse),
];

/// Field names of a check-in.
pub mod fields {
    pub const CONTACT_ID: &str = "contact_id";
    pub const MEMBERSHIP_ID: &str = "membership_id";
    /// When, stamped by the core.
    pub const AT: &str = "at";
    /// The user (staff, or the owner of the kiosk's API key) who checked the client in.
    pub const CHECKED_IN_BY: &str = "checked_in_by";
    /// The role they acted with (`kiosk`, `staff`, ...).
    pub const CHECKED_IN_AS: &str = "checked_in_as";
    /// The id of the API key the check-in came with (a kiosk's key); text, not a reference, so a
    /// key is revoked (deleted) whatever it recorded.
    pub const API_KEY_ID: &str = "api_key_id";
    pub const LOCATION_ID: &str = "location_id";
    pub const OUTCOME: &str = "outcome";
    pub const REASON: &str = "reason";
    /// The client's status when they checked in.
    pub const MEMBERSHIP_STATUS: &str = "membership_status";
    pub const NOTE: &str = "note";
}
use fields::*;

fn check_in() -> EntityDef {
    let mut e = EntityDef::new("check_in", "check_ins")
        .field(F::new(CONTACT_ID, T::Ref("contact")).required().read_only())
        .field(F::new(MEMBERSHIP_ID, T::Ref("membership")).read_only())
        .field(F::new(AT, T::Timestamp).required().read_only())
        .field(F::new(CHECKED_IN_BY, T::Ref("user")).read_only())
        .field(F::new(CHECKED_IN_AS, T::Text).max_len(64).read_only())
        .field(F::new(API_KEY_ID, T::Text).max_len(36).read_only())
        .field(F::new(LOCATION_ID, T::Ref("location")).read_only())
        .field(F::new(OUTCOME, T::Enum).options(Outcome::KEYS).required().read_only())
        .field(F::new(REASON, T::Text).max_len(500).read_only())
        .field(
            F::new(MEMBERSHIP_STATUS, T::Enum)
                .options(super::membership::status::CLIENT_STATUSES)
                .read_only(),
        )
        .field(F::new(NOTE, T::Text).max_len(2000));
    e.since = 7;
    // Written only by the check-in use case; read, annotated and deleted like any record.
    e.exposure = Exposure::Managed;
    e.indexes = vec![&[AT], &[CONTACT_ID, AT]];
    e.rollups = vec![Rollup::Fold(Fold {
        via: MEMBERSHIP_ID,
        fields: &[m::VISITS_USED],
        fold: visits_used,
    })];
    e
}

/// Does this check-in use a visit of the membership's allowance (allowed and warned ones do)?
pub fn counts_as_visit(r: &Record) -> bool {
    matches!(r.str(OUTCOME), Some("allowed" | "warned"))
}

fn visits_used(check_ins: &[Record], _cx: &ComputeCtx) -> Result<Vec<Value>> {
    Ok(vec![Value::Int(
        check_ins.iter().filter(|c| counts_as_visit(c)).count() as i64,
    )])
}

/// The tenant's policy for one setting (its default when unset).
pub fn policy(org: Option<&Record>, setting: &str) -> Policy {
    let default = POLICY_DEFAULTS
        .iter()
        .find(|(s, _)| *s == setting)
        .map_or(Policy::Refuse, |(_, p)| *p);
    org.and_then(|o| o.str(setting))
        .and_then(Policy::from_key)
        .unwrap_or(default)
}

/// What a check-in comes to, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Option<String>,
}

/// What the tenant's policy makes of a client's status (`None`: no membership), the end date of their
/// membership and the visits left of its allowance (`None`: unlimited). A running membership is let
/// in (an expiring one with its end date as the reason); every other case is the policy's.
pub fn decide(
    status: Option<MembershipStatus>,
    ends_on: Option<time::Date>,
    visits_left: Option<i64>,
    org: Option<&Record>,
) -> Decision {
    use MembershipStatus as S;
    let by = |setting: &str, reason: String| Decision {
        outcome: match policy(org, setting) {
            Policy::Allow => Outcome::Allowed,
            Policy::Warn => Outcome::Warned,
            Policy::Refuse => Outcome::Refused,
        },
        reason: Some(reason),
    };
    let end = ends_on.map_or_else(String::new, |d| d.to_string());
    match status {
        None => by(org_fields::CHECK_IN_NO_MEMBERSHIP, "no membership".into()),
        Some(S::Upcoming) => by(
            org_fields::CHECK_IN_NO_MEMBERSHIP,
            "the membership has not started yet".into(),
        ),
        Some(S::Cancelled) => by(
            org_fields::CHECK_IN_NO_MEMBERSHIP,
            "the membership was cancelled".into(),
        ),
        Some(S::Expired) => by(org_fields::CHECK_IN_EXPIRED, format!("the membership expired on {end}")),
        Some(S::Frozen) => by(org_fields::CHECK_IN_FROZEN, "the membership is frozen".into()),
        Some(S::Active | S::Expiring) if visits_left.is_some_and(|n| n <= 0) => by(
            org_fields::CHECK_IN_VISITS_USED_UP,
            "no visits left on the membership".into(),
        ),
        Some(S::Expiring) => Decision {
            outcome: Outcome::Allowed,
            reason: Some(format!("the membership ends on {end}")),
        },
        Some(S::Active) => Decision {
            outcome: Outcome::Allowed,
            reason: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_decides_every_status_with_its_defaults() {
        let d = |s, left| decide(s, None, left, None).outcome;
        assert_eq!(d(Some(MembershipStatus::Active), None), Outcome::Allowed);
        assert_eq!(d(Some(MembershipStatus::Expiring), Some(1)), Outcome::Allowed);
        assert_eq!(d(Some(MembershipStatus::Active), Some(0)), Outcome::Refused);
        assert_eq!(d(Some(MembershipStatus::Expired), None), Outcome::Warned);
        for s in [
            None,
            Some(MembershipStatus::Frozen),
            Some(MembershipStatus::Upcoming),
            Some(MembershipStatus::Cancelled),
        ] {
            assert_eq!(d(s, None), Outcome::Refused, "{s:?}");
        }
    }
}
