//! Users who sign in: creating one with a password in one atomic change, and the role a user gets
//! when none is given.

use super::Service;
use super::auth::{PasswordHasher, check_policy, hash_password};
use crate::access::Actor;
use crate::entity;
use crate::entity::people::{default_user_role, user_fields};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::store::Store;
use serde_json::{Map, Value as Json};

impl<S: Store> Service<S> {
    /// Creates a user (`input`: email, name, role, team, ...) with a password, in one change set: the
    /// user and their credential are written together or not at all. The role defaults per
    /// [`default_user_role`]. The password is checked against the policy (path `password`, reported
    /// with the user's field errors) before `hasher` hashes it. The tenant must exist (`NotFound`).
    pub async fn create_user_with_password(
        &self,
        actor: &Actor,
        input: &Map<String, Json>,
        password: &str,
        hasher: &impl PasswordHasher,
    ) -> Result<Record> {
        self.org(actor.tenant).await?;
        let mut input = input.clone();
        if input.get(user_fields::ROLE).is_none_or(Json::is_null)
            && let Some(role) = default_user_role(actor)
        {
            input.insert(user_fields::ROLE.into(), Json::String(role.into()));
        }
        let policy = check_policy(password);
        let (user, mut cs) = match (self.prepare_create(actor, &entity::USER, &input).await, policy) {
            (Ok(made), Ok(())) => made,
            (Err(Error::Validation(mut errs)), Err(Error::Validation(more))) => {
                errs.extend(more);
                return Err(Error::Validation(errs));
            }
            (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        };
        let phc = hash_password(hasher, password).await?;
        self.credential_into(actor, user.id, &phc, &mut cs).await?;
        self.apply(cs).await?;
        Ok(actor.redact(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{Fixture, block, obj};
    use crate::memory::MemoryStore;
    use serde_json::json;

    fn phc(p: &str) -> Result<String> {
        Ok(format!("$test${p}"))
    }

    #[test]
    fn platform_users_default_to_admin_and_get_their_password_atomically() {
        let f = Fixture::new(MemoryStore::new());
        let system = Actor::system(f.tenant);
        let input = obj(json!({"email": "Ada@Acme.test", "name": "Ada"}));
        let ada = block(
            f.svc
                .create_user_with_password(&system, &input, "correct horse battery", &phc),
        )
        .unwrap();
        assert_eq!(ada.str("role"), Some("admin"));
        let cred = block(f.svc.stored_credential(f.tenant, "ada@acme.test"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (cred.user_id, cred.password_hash.as_str()),
            (ada.id, "$test$correct horse battery")
        );

        // A tenant's own admin (a signed-in user) names the role.
        let tenant_admin = Actor {
            user_id: Some(ada.id),
            ..f.admin.clone()
        };
        let e = block(f.svc.create_user_with_password(
            &tenant_admin,
            &obj(json!({"email": "bo@acme.test", "name": "Bo"})),
            "correct horse battery",
            &phc,
        ))
        .unwrap_err();
        assert_eq!(e.field_errors()[0].path, "role");
        assert_eq!(default_user_role(&tenant_admin), None);
        assert!(crate::access::builtin::by_name(crate::entity::people::ADMIN_ROLE).is_some());
    }

    #[test]
    fn the_policy_is_checked_before_hashing_and_nothing_is_written() {
        let f = Fixture::new(MemoryStore::new());
        let system = Actor::system(f.tenant);
        let never = |_: &str| -> Result<String> { panic!("a refused password is never hashed") };
        let e = block(f.svc.create_user_with_password(
            &system,
            &obj(json!({"email": "not-an-email", "name": "Cy"})),
            "short",
            &never,
        ))
        .unwrap_err();
        let paths: Vec<&str> = e.field_errors().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["email", "password"], "every field error at once");
        let e = block(f.svc.create_user_with_password(
            &system,
            &obj(json!({"email": "cy@acme.test", "name": "Cy"})),
            "short",
            &never,
        ))
        .unwrap_err();
        assert_eq!(e.field_errors()[0].path, "password");
        assert!(
            block(f.svc.actor_by_email(f.tenant, "cy@acme.test")).is_err(),
            "no user without a password"
        );

        // A failing hasher leaves no user behind either.
        let broken = |_: &str| -> Result<String> { Err(Error::internal("hasher down")) };
        let input = obj(json!({"email": "cy@acme.test", "name": "Cy"}));
        assert!(
            block(
                f.svc
                    .create_user_with_password(&system, &input, "long enough password", &broken)
            )
            .is_err()
        );
        assert!(block(f.svc.actor_by_email(f.tenant, "cy@acme.test")).is_err());

        // Unknown tenant.
        let nowhere = Actor::system(crate::value::Id::nil());
        let e = block(
            f.svc
                .create_user_with_password(&nowhere, &input, "long enough password", &phc),
        )
        .unwrap_err();
        assert_eq!(e.code(), "not_found");
    }

    #[test]
    fn set_password_checks_the_policy_before_hashing() {
        let f = Fixture::new(MemoryStore::new());
        let tom = f.tech.user_id.unwrap();
        let never = |_: &str| -> Result<String> { panic!("a refused password is never hashed") };
        let e = block(f.svc.set_password(&f.admin, tom, "short", &never)).unwrap_err();
        assert_eq!(
            (e.code(), e.field_errors()[0].path.as_str()),
            ("validation", "password")
        );
        let e = block(f.svc.set_password(&f.admin, tom, &"x".repeat(2000), &never)).unwrap_err();
        assert_eq!(e.field_errors()[0].code, crate::error::codes::TOO_LONG);
        block(f.svc.set_password(&f.tech, tom, "a new long password", &phc)).unwrap();
        assert_eq!(
            block(f.svc.own_password_hash(&f.tech)).unwrap().as_deref(),
            Some("$test$a new long password")
        );
    }
}
