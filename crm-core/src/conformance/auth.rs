//! Sessions, API keys and stored secrets.

use super::{Fixture, NOW, block, codes_of, obj};
use crate::change::verify_chain;
use crate::error::{Error, codes};
use crate::store::{AuditQuery, Store};
use crate::value::Timestamp;
use serde_json::json;

pub fn sessions_keys_and_secrets<S: Store>(store: S) {
    let fx = Fixture::new(store);
    let svc = &fx.svc;
    let t = fx.tenant;
    let tom = fx.tech.user_id.unwrap();
    block(async {
        // Passwords: an admin sets one; it is found by sign-in email, never by an unknown one.
        let phc = |p: &str| -> crate::Result<String> { Ok(format!("$argon2id${p}")) };
        svc.set_password(&fx.admin, tom, "phc-one-long-enough", &phc)
            .await
            .unwrap();
        let cred = svc.stored_credential(t, "TOM@acme.test").await.unwrap().unwrap();
        assert_eq!(
            (cred.user_id, cred.password_hash.as_str()),
            (tom, "$argon2id$phc-one-long-enough")
        );
        assert_eq!(svc.stored_credential(t, "nobody@acme.test").await.unwrap(), None);
        // Someone else's password needs tenant-wide user updates.
        let e = svc
            .set_password(&fx.sales_a, tom, "phc-x-long-enough", &phc)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "forbidden");

        // Sessions: rotation, reuse detection, sign-out on password change, expiry.
        let later = Timestamp(NOW.0 + 86_400_000_000);
        let (sid, actor) = svc.start_session(t, tom, "hash-1", later).await.unwrap();
        assert_eq!(actor.user_id, Some(tom));
        svc.session_actor(t, sid, tom).await.unwrap();
        assert_eq!(
            svc.session_actor(t, sid, fx.staff.user_id.unwrap())
                .await
                .unwrap_err()
                .code(),
            "not_found"
        );
        svc.refresh_session(t, sid, "hash-1", "hash-2", later).await.unwrap();
        let reused = svc.refresh_session(t, sid, "hash-1", "hash-3", later).await;
        assert_eq!(reused.unwrap_err().code(), "not_found");
        assert!(
            svc.session_actor(t, sid, tom).await.is_err(),
            "a replayed refresh token ends the session"
        );
        let (s2, _) = svc.start_session(t, tom, "hash-4", later).await.unwrap();
        svc.set_password(&fx.tech, tom, "phc-two-long-enough", &phc)
            .await
            .unwrap();
        assert!(
            svc.session_actor(t, s2, tom).await.is_err(),
            "a password change signs sessions out"
        );
        let (s3, _) = svc
            .start_session(t, tom, "hash-5", Timestamp(NOW.0 + 1_000_000))
            .await
            .unwrap();
        svc.session_actor(t, s3, tom).await.unwrap();
        fx.clock.advance_micros(2_000_000);
        assert!(svc.session_actor(t, s3, tom).await.is_err(), "expired");
        let (s4, _) = svc.start_session(t, tom, "hash-6", later).await.unwrap();
        svc.end_session(&fx.tech, s4).await.unwrap();
        assert!(svc.session_actor(t, s4, tom).await.is_err(), "signed out");
        assert_eq!(
            svc.entity("session").unwrap_err().code(),
            "not_found",
            "internal types are not generic"
        );

        // API keys: bound to a role no stronger than the creator's, usable by hash only.
        let sam = fx.sales_a.user_id.unwrap();
        let e = svc
            .create_api_key(&fx.sales_a, "ci", Some("admin"), None, "kh")
            .await
            .unwrap_err();
        assert_eq!(e, Error::forbidden("create", "api_key", vec!["role".into()]));
        let key = svc
            .create_api_key(&fx.sales_a, "ci", None, None, "key-hash-1")
            .await
            .unwrap();
        assert!(key.to_json().get("key_hash").is_none());
        let as_key = svc.api_key_actor(t, key.id, "key-hash-1").await.unwrap();
        assert_eq!((as_key.user_id, as_key.role.name.as_str()), (Some(sam), "sales"));
        assert!(svc.api_key_actor(t, key.id, "key-hash-2").await.is_err());
        assert!(svc.api_key_actor(fx.sales_b.tenant, key.id, "key-hash-1").await.is_ok());
        let gen_create = svc
            .create(&fx.admin, "api_key", &obj(json!({"name": "x"})))
            .await
            .unwrap_err();
        assert_eq!(gen_create.code(), "forbidden");
        let u = svc.get(&fx.admin, "user", sam).await.unwrap();
        svc.update(&fx.admin, "user", sam, u.version, &obj(json!({"active": false})))
            .await
            .unwrap();
        assert!(
            svc.api_key_actor(t, key.id, "key-hash-1").await.is_err(),
            "deactivated owner"
        );

        // Webhooks: the secret is stored for signing, never shown; delivery state is recorded.
        let hook = svc
            .create_webhook(
                &fx.admin,
                &obj(json!({"url": "https://hooks.example.test/crm", "events": ["lead.*"]})),
                "s3cret-s3cret-s3cret",
            )
            .await
            .unwrap();
        assert!(hook.to_json().get("secret").is_none());
        assert_eq!(
            svc.create_webhook(
                &fx.sales_a,
                &obj(json!({"url": "https://x.test"})),
                "s3cret-s3cret-s3cret"
            )
            .await
            .unwrap_err()
            .code(),
            "forbidden"
        );
        let targets = svc.webhook_targets(t).await.unwrap();
        assert_eq!(targets.len(), 1);
        let start = targets[0].delivered_seq;
        assert!(start > 0, "starts after its own creation");
        assert!(targets[0].wants("lead.created") && !targets[0].wants("contact.created"));
        assert_eq!(targets[0].secret, "s3cret-s3cret-s3cret");
        fx.lead(&fx.admin, json!({"first_name": "Hook", "source": "website"}));
        let fail = crate::service::Delivery::Failed {
            seq: start + 1,
            status: Some(500),
            error: "server error".into(),
        };
        let policy = crate::delivery::RetryPolicy::default();
        let retry = svc.record_delivery(&targets[0], &fail, &policy, 0).await.unwrap();
        assert_eq!(
            retry,
            Some(Timestamp(svc.now().0 + 1_000_000)),
            "first retry a second later"
        );
        let t1 = svc.webhook_targets(t).await.unwrap().remove(0);
        assert_eq!((t1.delivered_seq, t1.attempts, t1.next_attempt_at), (start, 1, retry));
        assert!(svc.due_webhooks(t).await.unwrap().is_empty(), "waiting for the retry");
        svc.record_delivery(
            &t1,
            &crate::service::Delivery::Delivered {
                seq: start + 1,
                status: 200,
            },
            &policy,
            0,
        )
        .await
        .unwrap();
        let t2 = svc.webhook_targets(t).await.unwrap().remove(0);
        assert_eq!(
            (t2.delivered_seq, t2.attempts, t2.next_attempt_at),
            (start + 1, 0, None)
        );

        // No secret reaches the audit log or the outbox.
        let audit = svc
            .store()
            .audit(
                t,
                &AuditQuery {
                    limit: u32::MAX,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let events = svc.store().events(t, 0, u32::MAX).await.unwrap();
        let dump = format!(
            "{}{}",
            serde_json::to_string(&audit).unwrap(),
            serde_json::to_string(&events).unwrap()
        );
        for secret in ["phc-one", "phc-two", "hash-1", "hash-2", "key-hash-1", "s3cret"] {
            assert!(!dump.contains(secret), "{secret} leaked");
        }
        assert!(verify_chain(&audit).is_ok());
    });
}

/// A webhook may only target a public internet address (issue 18, SSRF): loopback, private,
/// link-local, metadata and the like are refused at registration and on update with
/// `address_not_allowed` on `url`, writing nothing; an operator's `AddressPolicy::Any` allows them.
pub fn webhooks_refuse_internal_addresses<S: Store>(store: S) {
    let fx = Fixture::new(store);
    block(async {
        let svc = &fx.svc;
        let before = (fx.writes_seen(), fx.count("webhook"));
        let secret = "s3cret-s3cret-s3cret";
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/",
            "http://[::ffff:10.0.0.1]/",
            "http://[fd00:ec2::254]/",
            "http://localhost:9000/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://0.0.0.0/",
        ] {
            let err = svc
                .create_webhook(&fx.admin, &obj(json!({ "url": url })), secret)
                .await
                .unwrap_err();
            assert_eq!(
                codes_of(&err),
                vec![("url".to_owned(), codes::ADDRESS_NOT_ALLOWED.to_owned())],
                "{url}"
            );
        }
        let odd = svc
            .create_webhook(&fx.admin, &obj(json!({ "url": "http://127.1/" })), secret)
            .await
            .unwrap_err();
        assert_eq!(codes_of(&odd), vec![("url".to_owned(), codes::INVALID_URL.to_owned())]);
        assert_eq!((fx.writes_seen(), fx.count("webhook")), before, "nothing written");

        let hook = svc
            .create_webhook(
                &fx.admin,
                &obj(json!({ "url": "https://hooks.example.test/x" })),
                secret,
            )
            .await
            .unwrap();
        let hook = svc.get(&fx.admin, "webhook", hook.id).await.unwrap();
        let moved = svc
            .update(
                &fx.admin,
                "webhook",
                hook.id,
                hook.version,
                &obj(json!({ "url": "http://192.168.1.10/" })),
            )
            .await
            .unwrap_err();
        assert_eq!(
            codes_of(&moved),
            vec![("url".to_owned(), codes::ADDRESS_NOT_ALLOWED.to_owned())]
        );
        // Other fields of a webhook stay editable.
        svc.update(
            &fx.admin,
            "webhook",
            hook.id,
            hook.version,
            &obj(json!({ "active": false })),
        )
        .await
        .unwrap();
    });
    let admin = fx.admin.clone();
    let svc = fx.svc.with_webhook_addresses(crate::address::AddressPolicy::Any);
    block(async {
        svc.create_webhook(
            &admin,
            &obj(json!({ "url": "http://127.0.0.1:9/hook" })),
            "s3cret-s3cret-s3cret",
        )
        .await
        .unwrap();
    });
}

/// A webhook is delivered by one worker at a time (issue 18, several server instances): a claim is
/// exclusive until its holder stops renewing it and it expires; claims are per webhook and per
/// tenant, and write no audit entry or event.
pub fn webhook_claims_are_exclusive_until_they_expire<S: Store>(store: S) {
    let fx = Fixture::new(store);
    let svc = &fx.svc;
    let (a, b) = (super::fixed_id(901), super::fixed_id(902));
    block(async {
        let secret = "s3cret-s3cret-s3cret";
        for url in ["https://one.example.test/", "https://two.example.test/"] {
            svc.create_webhook(&fx.admin, &obj(json!({ "url": url })), secret)
                .await
                .unwrap();
        }
        let targets = svc.webhook_targets(fx.tenant).await.unwrap();
        let (one, two) = (&targets[0], &targets[1]);
        let before = fx.writes_seen();
        assert!(svc.claim_webhook(one, a).await.unwrap());
        assert!(!svc.claim_webhook(one, b).await.unwrap(), "held by a");
        assert!(svc.claim_webhook(two, b).await.unwrap(), "another webhook is free");
        assert!(svc.claim_webhook(one, a).await.unwrap(), "a renews its own");
        let claim = crate::delivery::CLAIM_SECS * 1_000_000;
        fx.clock.advance_micros(claim - 1);
        assert!(!svc.claim_webhook(one, b).await.unwrap(), "a's renewal still runs");
        fx.clock.advance_micros(1);
        assert!(svc.claim_webhook(one, b).await.unwrap(), "a stopped renewing: expired");
        assert!(!svc.claim_webhook(one, a).await.unwrap(), "now b's");
        // The same name in another tenant is another lease.
        let other = svc.create_organization(&obj(json!({"name": "Other"}))).await.unwrap();
        let now = svc.now();
        let name = format!("webhook:{}", one.id);
        assert!(
            svc.store()
                .lease(other.id, &name, a, now, Timestamp(now.0 + 1))
                .await
                .unwrap()
        );
        assert_eq!(fx.writes_seen(), before, "claims are not audited");
    });
}

pub fn idempotency_keys_replay_refuse_and_expire<S: Store>(store: S) {
    use crate::idempotency::{Answer, Begin, KEY_TTL_SECS};
    let fx = Fixture::new(store);
    let svc = &fx.svc;
    block(async {
        let before = fx.writes_seen();
        let answer = Answer {
            status: 201,
            headers: vec![("location".into(), "/x".into())],
            body: "{\"id\":1}".into(),
        };
        let Begin::Run(claim) = svc.idempotency_begin(&fx.sales_a, None, "k-1", "fp").await.unwrap() else {
            panic!("a new key runs")
        };
        // While the first request runs, a repeat is a conflict and a different request reuses the key.
        let running = svc.idempotency_begin(&fx.sales_a, None, "k-1", "fp").await.unwrap_err();
        assert_eq!(running.code(), "conflict", "{running:?}");
        let reused = svc
            .idempotency_begin(&fx.sales_a, None, "k-1", "other")
            .await
            .unwrap_err();
        assert_eq!(reused.field_errors()[0].code, "idempotency_key_reused");
        // Keys are per caller: another user, or an API key of the same user, is another key.
        let other = svc.idempotency_begin(&fx.sales_b, None, "k-1", "other").await.unwrap();
        assert!(matches!(other, Begin::Run(_)), "{other:?}");
        let key = super::fixed_id(777);
        let by_key = svc
            .idempotency_begin(&fx.sales_a, Some(key), "k-1", "fp")
            .await
            .unwrap();
        assert!(matches!(by_key, Begin::Run(_)), "{by_key:?}");
        svc.idempotency_settle(&claim, answer.clone()).await.unwrap();
        // Settled: the same request gets the same answer, a different one is still refused.
        assert_eq!(
            svc.idempotency_begin(&fx.sales_a, None, "k-1", "fp").await.unwrap(),
            Begin::Replay(answer.clone())
        );
        assert!(svc.idempotency_begin(&fx.sales_a, None, "k-1", "other").await.is_err());
        // A second settle does not overwrite the first answer.
        let late = Answer {
            status: 200,
            headers: vec![],
            body: String::new(),
        };
        svc.idempotency_settle(&claim, late).await.unwrap();
        assert_eq!(
            svc.idempotency_begin(&fx.sales_a, None, "k-1", "fp").await.unwrap(),
            Begin::Replay(answer.clone())
        );
        // An answer that is not final (a failure underneath) releases the key: a repeat runs anew.
        let Begin::Run(c2) = svc.idempotency_begin(&fx.sales_a, None, "k-2", "fp").await.unwrap() else {
            panic!("a new key runs")
        };
        let busy = Answer {
            status: 503,
            headers: vec![],
            body: String::new(),
        };
        svc.idempotency_settle(&c2, busy).await.unwrap();
        let again = svc.idempotency_begin(&fx.sales_a, None, "k-2", "fp2").await.unwrap();
        assert!(matches!(again, Begin::Run(_)), "{again:?}");
        // Malformed keys are refused.
        let bad = svc
            .idempotency_begin(&fx.sales_a, None, "has space", "fp")
            .await
            .unwrap_err();
        assert_eq!(bad.field_errors()[0].code, "invalid_idempotency_key");
        // Kept for the time the core says, then the key is free again (even for another request).
        fx.clock.advance_micros(KEY_TTL_SECS * 1_000_000 - 1);
        assert_eq!(
            svc.idempotency_begin(&fx.sales_a, None, "k-1", "fp").await.unwrap(),
            Begin::Replay(answer)
        );
        fx.clock.advance_micros(1);
        let expired = svc.idempotency_begin(&fx.sales_a, None, "k-1", "other").await.unwrap();
        assert!(matches!(expired, Begin::Run(_)), "{expired:?}");
        assert_eq!(fx.writes_seen(), before, "keys are not audited");
    });
}

/// A webhook receives the events its creator may read, redacted for them, whatever their role is
/// at delivery time; nothing while the creator is deactivated; a webhook the system created
/// receives every event.
pub fn webhooks_receive_what_their_creator_may_read<S: Store>(store: S) {
    let fx = Fixture::new(store);
    block(async {
        let svc = &fx.svc;
        let t = fx.tenant;
        let admin_user = async |name: &str| {
            let input = json!({"name": name, "email": format!("{name}@acme.test"), "role": "admin"});
            svc.create(&fx.admin, "user", &obj(input)).await.unwrap().id
        };
        let (ada, _bob) = (admin_user("ada").await, admin_user("bob").await);
        let ada_actor = svc.actor(t, ada).await.unwrap();
        let secret = "s3cret-s3cret-s3cret";
        let url = json!({"url": "https://hooks.example.test/crm", "events": ["lead.created"]});
        svc.create_webhook(&ada_actor, &obj(url.clone()), secret).await.unwrap();
        svc.create_webhook(&fx.admin, &obj(url), secret).await.unwrap();
        let targets = svc.webhook_targets(t).await.unwrap();
        let ada_hook = targets.iter().find(|h| h.created_by == Some(ada)).unwrap().clone();
        let system_hook = targets.iter().find(|h| h.created_by.is_none()).unwrap().clone();

        fx.lead(&ada_actor, json!({"first_name": "Ada's"}));
        fx.lead(&fx.sales_b, json!({"first_name": "Sue's"}));
        let names = async |hook: &crate::service::WebhookTarget| -> Option<Vec<String>> {
            let (events, _) = svc.webhook_events(hook, 100).await.unwrap()?;
            Some(
                events
                    .iter()
                    .filter(|e| e.kind == "lead.created")
                    .map(|e| e.payload["first_name"].as_str().unwrap_or_default().to_owned())
                    .collect(),
            )
        };
        assert_eq!(
            names(&ada_hook).await.unwrap(),
            ["Ada's", "Sue's"],
            "an admin reads every lead"
        );

        // Ada becomes a sales user: her webhook now gets only what she may read as one.
        let u = svc.get(&fx.admin, "user", ada).await.unwrap();
        svc.update(&fx.admin, "user", ada, u.version, &obj(json!({"role": "sales"})))
            .await
            .unwrap();
        assert_eq!(names(&ada_hook).await.unwrap(), ["Ada's"]);
        assert_eq!(names(&system_hook).await.unwrap(), ["Ada's", "Sue's"]);

        // Deactivated: nothing is delivered (and nothing skipped).
        let u = svc.get(&fx.admin, "user", ada).await.unwrap();
        svc.update(&fx.admin, "user", ada, u.version, &obj(json!({"active": false})))
            .await
            .unwrap();
        assert_eq!(names(&ada_hook).await, None);
    });
}
