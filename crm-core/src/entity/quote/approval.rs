//! Quote approval rules: tenant data (the organization's `quote_approval_rules`), a list of levels,
//! each naming the role that approves it and the thresholds that call for it:
//!
//! ```json
//! [{"role": "manager", "total_above": "10000", "discount_percent_above": "15"},
//!  {"role": "admin", "total_above": "50000"}]
//! ```
//!
//! A submitted quote needs the highest level whose threshold it passes (total above, or effective
//! discount above; a level with neither applies to every quote); with none it is approved at once.
//! A level may be approved by its role, the role of any higher level, or an admin, and never by the
//! user who submitted the quote.

use crate::decimal::Decimal;
use crate::error::{FieldError, codes};
use crate::value::Money;
use serde::{Deserialize, Serialize};

/// One approval level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// The role that approves quotes at this level.
    pub role: String,
    #[serde(default)]
    pub total_above: Option<Money>,
    #[serde(default)]
    pub discount_percent_above: Option<Decimal>,
}

impl ApprovalRule {
    fn applies(&self, total: Money, discount_percent: Decimal) -> bool {
        match (self.total_above, self.discount_percent_above) {
            (None, None) => true,
            (t, d) => t.is_some_and(|t| total > t) || d.is_some_and(|d| discount_percent > d),
        }
    }
}

/// Reads the tenant's rules, with errors at `path[i].field`.
pub fn parse(j: &serde_json::Value, path: &str) -> Result<Vec<ApprovalRule>, Vec<FieldError>> {
    let Some(items) = j.as_array() else {
        return Err(vec![FieldError::new(
            path,
            codes::INVALID_TYPE,
            "expected a list of approval levels",
        )]);
    };
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match serde_json::from_value::<ApprovalRule>(item.clone()) {
            Ok(r) if r.role.trim().is_empty() => errs.push(FieldError::new(
                format!("{path}[{i}].role"),
                codes::REQUIRED,
                "name the approving role",
            )),
            Ok(r) => out.push(r),
            Err(e) => errs.push(FieldError::new(
                format!("{path}[{i}]"),
                codes::INVALID_FORMAT,
                e.to_string(),
            )),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// The level (index into `rules`) a quote with this total and effective discount needs; `None`: none.
pub fn required_level(rules: &[ApprovalRule], total: Money, discount_percent: Decimal) -> Option<usize> {
    rules.iter().rposition(|r| r.applies(total, discount_percent))
}

/// May a user with `role` approve a quote that needs the level whose role is `level_role`?
pub fn may_approve(rules: &[ApprovalRule], level_role: &str, role: &str) -> bool {
    if role == crate::access::builtin::ADMIN {
        return true;
    }
    let Some(level) = rules.iter().position(|r| r.role == level_role) else {
        // The rules changed since submission and no longer name the level: only an admin decides.
        return false;
    };
    rules[level..].iter().any(|r| r.role == role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Vec<ApprovalRule> {
        parse(
            &json!([{"role": "manager", "total_above": "10000", "discount_percent_above": "15"},
                    {"role": "admin", "total_above": "50000"}]),
            "r",
        )
        .unwrap()
    }

    #[test]
    fn the_highest_level_that_applies() {
        let r = rules();
        let d = |s: &str| crate::decimal::parse(s).unwrap();
        assert_eq!(required_level(&r, Money(1_000_000), d("15")), None);
        assert_eq!(required_level(&r, Money(1_000_001), d("0")), Some(0));
        assert_eq!(required_level(&r, Money(100), d("15.01")), Some(0));
        assert_eq!(required_level(&r, Money(5_000_001), d("0")), Some(1));
        assert!(may_approve(&r, "manager", "manager") && may_approve(&r, "manager", "admin"));
        assert!(!may_approve(&r, "admin", "manager") && !may_approve(&r, "manager", "sales"));
    }

    #[test]
    fn bad_rules_name_their_place() {
        let errs = parse(
            &json!([{"role": "manager", "total_above": "ten"}, {"role": ""}]),
            "rules",
        )
        .unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["rules[0]", "rules[1].role"]);
        assert!(parse(&json!({"role": "x"}), "rules").is_err());
    }
}
