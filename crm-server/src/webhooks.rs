//! Webhook delivery. A background worker sends each webhook the tenant's events it subscribes to,
//! in outbox order, as `POST` JSON signed with HMAC-SHA256:
//!
//! ```text
//! X-CRM-Event: lead.created
//! X-CRM-Delivery: <event id>            (the same on every retry: receivers deduplicate on it)
//! X-CRM-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! ```
//!
//! A 2xx answer delivers the event; anything else fails the attempt. When a failed event is retried
//! (exponential backoff with jitter) and when it is given up on (after `webhook_max_attempts`) is the
//! core's to decide ([`crm_core::delivery`]): this worker only sends, and records each outcome with
//! [`crm_core::service::Service::record_delivery`]. The position and retry state live in the webhook
//! record, so a restart resumes where delivery stopped: nothing is lost, and an event may arrive
//! twice (at least once).
//!
//! Every instance over one database runs this worker; before each attempt the worker claims the
//! webhook ([`crm_core::service::Service::claim_webhook`], a lease in the store renewed per attempt),
//! so one instance at a time delivers a webhook and each event goes out once, and the webhooks of an
//! instance that died are taken over when its claims expire.
//!
//! Unless the operator allows any address (`--allow-private-webhooks`), a webhook reaches public
//! internet addresses only ([`crm_core::address`]): a literal IP in its URL is checked before the
//! request, and a host name is resolved by [`CheckedResolver`], which refuses the name if any of its
//! addresses is not public and otherwise hands the connector exactly the addresses it checked, so a
//! second DNS answer cannot swap in an internal one.

use crate::state::{AppState, ServerStore};
use crm_core::address::{self, AddressPolicy};
use crm_core::service::{Delivery, WebhookTarget};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>;

fn client(policy: AddressPolicy) -> HttpsClient {
    let mut http = HttpConnector::new_with_resolver(CheckedResolver(policy));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

/// The connector's DNS resolver: the system resolver, then [`address::check_ip`] on every answer.
/// The connector dials only what this returns (IP literals skip it: [`literal_refusal`] covers them).
#[derive(Clone, Copy, Debug)]
pub struct CheckedResolver(pub AddressPolicy);

impl tower::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            // One non-public answer refuses the name: a receiver has no reason to publish one.
            for a in &addrs {
                if let Err(r) = address::check_ip(a.ip(), policy) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!("address not allowed: {host} resolves to {} ({r})", a.ip()),
                    ));
                }
            }
            Ok(addrs.into_iter())
        })
    }
}

/// Why a URL whose host is an IP literal may not be called (the connector does not resolve those).
fn literal_refusal(uri: &hyper::Uri, policy: AddressPolicy) -> Option<String> {
    let ip = address::ip_literal(uri.host()?)?;
    address::check_ip(ip, policy)
        .err()
        .map(|r| format!("address not allowed: {ip} ({r})"))
}

/// An error with its causes: the client's own message ("client error (Connect)") says too little.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// `t=<ts>,v1=<hex>` for a body sent at `ts`.
pub fn signature(secret: &str, ts: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={ts},v1={hex}")
}

/// Runs the delivery worker until shutdown.
pub fn spawn<S: ServerStore>(app: AppState<S>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = client(app.cfg.webhook_addresses);
        let mut shutdown = app.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = deliver_due(&app, &http).await {
                tracing::warn!(error = ?e, "webhook delivery pass failed");
            }
            let written = app.written.notified();
            tokio::select! {
                _ = written => {}
                _ = tokio::time::sleep(app.cfg.poll_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

async fn deliver_due<S: ServerStore>(app: &AppState<S>, http: &HttpsClient) -> crate::error::ApiResult<()> {
    let tenants = app.run(|svc| async move { svc.tenants().await }).await?;
    for tenant in tenants {
        let due = app
            .run(move |svc| async move { svc.due_webhooks(tenant).await })
            .await?;
        for t in due {
            // Work through the backlog, one event at a time, while deliveries succeed and this
            // instance holds the webhook.
            let mut target = t;
            for _ in 0..100 {
                let (claimed, worker) = (target.clone(), app.instance);
                if !app
                    .run(move |svc| async move { svc.claim_webhook(&claimed, worker).await })
                    .await?
                {
                    break;
                }
                match deliver_next(app, http, &target).await? {
                    Some(next) => target = next,
                    None => break,
                }
            }
        }
    }
    Ok(())
}

/// Delivers the next event for `target`; returns the updated target to continue with, or `None`
/// when caught up or after a failure (which waits for its retry time).
async fn deliver_next<S: ServerStore>(
    app: &AppState<S>,
    http: &HttpsClient,
    target: &WebhookTarget,
) -> crate::error::ApiResult<Option<WebhookTarget>> {
    let after = target.delivered_seq;
    let t = target.clone();
    let Some((events, scanned)) = app
        .run(move |svc| async move { svc.webhook_events(&t, 100).await })
        .await?
    else {
        tracing::warn!(webhook = %target.id, "webhook not delivered: its creator is no longer an active user");
        return Ok(None);
    };
    let Some(event) = events.into_iter().find(|e| target.wants(&e.kind)) else {
        if scanned > after {
            record(app, target, Delivery::Skipped { seq: scanned }).await?;
            return Ok(reloaded(app, target).await);
        }
        return Ok(None);
    };
    let body = serde_json::to_vec(&event).unwrap_or_default();
    let ts = app.now_s();
    let req = hyper::Request::post(&target.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("crm-server/", env!("CARGO_PKG_VERSION")))
        .header("x-crm-event", &event.kind)
        .header("x-crm-delivery", event.id.to_string())
        .header("x-crm-signature", signature(&target.secret, ts, &body))
        .body(Full::new(Bytes::from(body)));
    let outcome_of = |status: Option<u16>, error: String| Delivery::Failed {
        seq: event.seq,
        status,
        error,
    };
    let checked = req.map(|r| (literal_refusal(r.uri(), app.cfg.webhook_addresses), r));
    let result = match checked {
        Err(e) => outcome_of(None, format!("bad webhook url: {e}")),
        Ok((Some(refused), _)) => outcome_of(None, refused),
        Ok((None, req)) => match tokio::time::timeout(app.cfg.webhook_timeout, http.request(req)).await {
            Err(_) => outcome_of(None, "timed out".into()),
            Ok(Err(e)) => outcome_of(None, format!("request failed: {}", chain(&e))),
            Ok(Ok(res)) => {
                let status = res.status().as_u16();
                // Read (and drop) the answer so the connection can be reused.
                let _ = tokio::time::timeout(Duration::from_secs(5), res.into_body().collect()).await;
                if (200..300).contains(&status) {
                    Delivery::Delivered { seq: event.seq, status }
                } else {
                    outcome_of(Some(status), format!("answered {status}"))
                }
            }
        },
    };
    let ok = matches!(result, Delivery::Delivered { .. });
    app.metrics
        .webhook_deliveries
        .get_or_create(&crate::metrics::OutcomeLabels {
            outcome: if ok { "delivered" } else { "failed" }.to_owned(),
        })
        .inc();
    let retry_at = record(app, target, result).await?;
    if !ok {
        match retry_at {
            Some(at) => {
                tracing::info!(webhook = %target.id, seq = event.seq, retry_at = %at, "webhook delivery failed; will retry")
            }
            None => {
                tracing::warn!(webhook = %target.id, seq = event.seq, "webhook delivery failed; gave up on the event")
            }
        }
    }
    Ok(if ok { reloaded(app, target).await } else { None })
}

/// Records an outcome; returns when a failed event is retried (`None`: done with it).
async fn record<S: ServerStore>(
    app: &AppState<S>,
    target: &WebhookTarget,
    d: Delivery,
) -> crate::error::ApiResult<Option<crm_core::value::Timestamp>> {
    let t = target.clone();
    let policy = app.cfg.retry_policy();
    let seed = u64::from_le_bytes(crate::auth::tokens::random_bytes(8).try_into().unwrap_or_default());
    app.run(move |svc| async move { svc.record_delivery(&t, &d, &policy, seed).await })
        .await
}

async fn reloaded<S: ServerStore>(app: &AppState<S>, target: &WebhookTarget) -> Option<WebhookTarget> {
    let (tenant, id) = (target.tenant, target.id);
    let all = app
        .run(move |svc| async move { svc.webhook_targets(tenant).await })
        .await
        .ok()?;
    all.into_iter()
        .find(|t| t.id == id && t.delivered_seq > target.delivered_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let s = signature("secret", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("other", 1_700_000_000, b"{}"));
    }
}
