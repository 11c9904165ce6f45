//! A real server on 127.0.0.1 over a temporary SQLite file, two tenants with a user of each built-in
//! role (passwords set), and a small HTTP client.

#![allow(dead_code, clippy::unwrap_used)]

use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::service::Service;
use crm_core::store::{AuditQuery, Store};
use crm_core::value::Id;
use crm_server::{Config, Running};
use crm_store::SqliteStore;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;

pub const JWT_SECRET: &[u8] = b"the-test-servers-jwt-secret-32-bytes-long";
pub const PASSWORD: &str = "correct-horse-battery-staple";
pub const ROLES: [&str; 5] = ["admin", "manager", "sales", "field_tech", "staff"];

pub struct Tenant {
    pub id: Id,
    /// role -> (user id, email, access token)
    pub users: Vec<(String, Id, String, String)>,
}

impl Tenant {
    pub fn token(&self, role: &str) -> &str {
        &self.users.iter().find(|u| u.0 == role).unwrap().3
    }
    pub fn user(&self, role: &str) -> Id {
        self.users.iter().find(|u| u.0 == role).unwrap().1
    }
    pub fn email(&self, role: &str) -> &str {
        &self.users.iter().find(|u| u.0 == role).unwrap().2
    }
}

pub struct Env {
    pub server: Option<Running>,
    pub base: String,
    pub store: Arc<SqliteStore>,
    pub http: HyperClient<HttpConnector, Full<Bytes>>,
    pub a: Tenant,
    pub b: Tenant,
    _dir: tempfile::TempDir,
}

pub struct Res {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Json,
    pub text: String,
    /// The body as received (`text` is its lossy UTF-8 reading).
    pub bytes: Vec<u8>,
}

fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap()
}

async fn tenant(svc: &Service<Arc<SqliteStore>>, name: &str) -> (Id, Vec<(String, Id, String)>) {
    let org = svc.create_organization(&obj(json!({ "name": name }))).await.unwrap();
    let sys = Actor::system(org.id);
    let team = svc
        .create(&sys, "team", &obj(json!({ "name": "North" })))
        .await
        .unwrap();
    let phc = crm_server::auth::password::hash_now(PASSWORD);
    let mut users = Vec::new();
    for role in ROLES {
        let email = format!("{role}@{}.test", name.to_lowercase());
        let u = svc
            .create(
                &sys,
                "user",
                &obj(json!({ "name": role, "email": email, "role": role, "team_id": team.id.to_string() })),
            )
            .await
            .unwrap();
        // One argon2 hash for every test user (hashing is slow on purpose).
        let same = |_: &str| -> crm_core::Result<String> { Ok(phc.clone()) };
        svc.set_password(&sys, u.id, PASSWORD, &same).await.unwrap();
        users.push((role.to_owned(), u.id, email));
    }
    (org.id, users)
}

impl Env {
    pub async fn start() -> Env {
        Env::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::for_tests();
        cfg.admin_token = Some("platform-admin-token-platform-admin-token".into());
        cfg.jwt_secret = JWT_SECRET.to_vec();
        cfg.poll_interval = std::time::Duration::from_millis(100);
        tweak(&mut cfg);
        // As `crm serve` opens it: a reader per request the server runs at once.
        let store = Arc::new(
            SqliteStore::open(dir.path().join("crm.db"))
                .unwrap()
                .with_readers(cfg.max_in_flight),
        );
        let blobs = crm_store::blob::DirBlobStore::open(dir.path().join("crm.blobs")).unwrap();
        let svc =
            Service::new(store.clone(), Arc::new(SystemClock), Arc::new(RandomIds)).with_blob_store(Arc::new(blobs));
        let (a, ua) = tenant(&svc, "Acme").await;
        let (b, ub) = tenant(&svc, "Bolt").await;
        let server = crm_server::spawn(svc, cfg).await.unwrap();
        let base = format!("http://{}", server.addr);
        let http = HyperClient::builder(TokioExecutor::new()).build_http();
        let mut env = Env {
            server: Some(server),
            base,
            store,
            http,
            a: Tenant {
                id: a,
                users: Vec::new(),
            },
            b: Tenant {
                id: b,
                users: Vec::new(),
            },
            _dir: dir,
        };
        for (t, users, which) in [(a, ua, 0), (b, ub, 1)] {
            let mut out = Vec::new();
            for (role, id, email) in users {
                let tok = env.login(t, &email, PASSWORD).await;
                assert_eq!(tok.status, 200, "{}", tok.text);
                out.push((role, id, email, tok.body["access_token"].as_str().unwrap().to_owned()));
            }
            if which == 0 {
                env.a.users = out;
            } else {
                env.b.users = out;
            }
        }
        env
    }

    pub async fn login(&self, org: Id, email: &str, password: &str) -> Res {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "organization": org, "email": email, "password": password })),
            &[],
        )
        .await
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Json>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let bytes = match body {
            Some(j) => {
                b = b.header("content-type", "application/json");
                Bytes::from(j.to_string())
            }
            None => Bytes::new(),
        };
        self.send(b.body(Full::new(bytes)).unwrap()).await
    }

    pub async fn send(&self, req: hyper::Request<Full<Bytes>>) -> Res {
        let res = self.http.request(req).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Json::Null);
        Res {
            status,
            headers,
            body,
            text,
            bytes: bytes.to_vec(),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.call("GET", path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Json) -> Res {
        self.call("POST", path, Some(token), Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, token: &str, version: u64, body: Json) -> Res {
        let v = format!("\"{version}\"");
        self.call("PATCH", path, Some(token), Some(body), &[("if-match", &v)])
            .await
    }

    /// Audit entries and events of a tenant: every write adds to both, so equal counts mean nothing
    /// was written.
    pub async fn writes(&self, tenant: Id) -> (usize, usize) {
        let audit = self
            .store
            .audit(
                tenant,
                &AuditQuery {
                    limit: u32::MAX,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .len();
        let events = self.store.events(tenant, 0, u32::MAX).await.unwrap().len();
        (audit, events)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.unwrap();
        }
    }
}
