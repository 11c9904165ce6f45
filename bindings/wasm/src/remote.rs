//! The browser's (or Node's) `fetch` as the transport of the core's sync round
//! (`crm_core::service::SyncTransport`), and the provision request of a new device. The
//! messages and what to do with them are the core's; this only carries them.

use crm_core::service::{RemoteError, SyncTransport, server_base};
use crm_core::sync::{Provision, PullPage, PushAnswer, PushRequest};
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// A CRM server (`https://crm.example.com`) and the user's access token.
pub struct Fetch {
    base: String,
    auth: String,
}

impl Fetch {
    /// Refuses an address that is not http(s) (the field is `serverUrl`).
    pub fn new(server_url: &str, token: &str) -> crm_core::Result<Fetch> {
        Ok(Fetch {
            base: server_base(server_url, "serverUrl")?,
            auth: format!("Bearer {token}"),
        })
    }

    /// What a new device of the token's user needs (`GET /api/v1/sync/provision`).
    pub async fn provision(&self) -> Result<Provision, RemoteError> {
        self.call("GET", "/api/v1/sync/provision", None).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<T, RemoteError> {
        let (status, text) = self
            .send(method, path, body.map(|b| (JsValue::from(b), "application/json")))
            .await?;
        serde_json::from_str(&text).map_err(|e| RemoteError {
            status,
            code: "bad_answer".into(),
            detail: format!("the server's answer is not a sync message this build reads: {e}"),
        })
    }

    /// One request; a success's status and body, else the server's problem as a [`RemoteError`].
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(JsValue, &str)>,
    ) -> Result<(u16, String), RemoteError> {
        let unreachable = |e: JsValue| RemoteError {
            status: 0,
            code: "unreachable".into(),
            detail: format!("the server did not answer: {}", describe(&e)),
        };
        let headers = js_sys::Object::new();
        set(&headers, "authorization", &self.auth.as_str().into());
        let init = js_sys::Object::new();
        set(&init, "method", &method.into());
        if let Some((body, media_type)) = body {
            set(&headers, "content-type", &media_type.into());
            set(&init, "body", &body);
        }
        set(&init, "headers", &headers);
        let url = format!("{}{path}", self.base);
        let fetch: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"fetch".into())
            .map_err(unreachable)?
            .dyn_into()
            .map_err(|_| unreachable("this host has no fetch".into()))?;
        let promise: js_sys::Promise = fetch
            .call2(&JsValue::UNDEFINED, &url.into(), &init)
            .map_err(unreachable)?
            .dyn_into()
            .map_err(unreachable)?;
        let resp = JsFuture::from(promise).await.map_err(unreachable)?;
        let status = js_sys::Reflect::get(&resp, &"status".into())
            .ok()
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0) as u16;
        let text: js_sys::Function = js_sys::Reflect::get(&resp, &"text".into())
            .map_err(unreachable)?
            .dyn_into()
            .map_err(|_| unreachable("the answer has no text".into()))?;
        let text: js_sys::Promise = text
            .call0(&resp)
            .map_err(unreachable)?
            .dyn_into()
            .map_err(unreachable)?;
        let text = JsFuture::from(text)
            .await
            .map_err(unreachable)?
            .as_string()
            .unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok((status, text));
        }
        Err(RemoteError::from_answer(status, text.as_bytes()))
    }
}

impl SyncTransport for Fetch {
    async fn push(&self, req: &PushRequest) -> Result<PushAnswer, RemoteError> {
        let body = serde_json::to_string(req).map_err(|e| RemoteError {
            status: 0,
            code: "bad_request".into(),
            detail: e.to_string(),
        })?;
        self.call("POST", "/api/v1/sync/push", Some(body)).await
    }

    async fn upload(&self, sha256: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        let body = js_sys::Uint8Array::from(bytes);
        let path = format!("/api/v1/sync/blobs/{sha256}");
        self.send("PUT", &path, Some((body.into(), "application/octet-stream")))
            .await
            .map(|_| ())
    }

    async fn pull(&self, cursor: Option<&str>, limit: u32) -> Result<PullPage, RemoteError> {
        let mut path = format!("/api/v1/sync/pull?limit={limit}");
        if let Some(c) = cursor {
            path.push_str("&cursor=");
            path.push_str(&String::from(js_sys::encode_uri_component(c)));
        }
        self.call("GET", &path, None).await
    }
}

fn set(obj: &js_sys::Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = js_sys::Reflect::set(obj, &key.into(), value);
}

fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// A [`RemoteError`] as a JS `Error` named `CrmRemoteError`: `status` (0: no answer), the server's
/// `code` and `detail`.
pub fn remote_error(e: &RemoteError) -> JsValue {
    let js = js_sys::Error::new(&format!("{} ({}): {}", e.code, e.status, e.detail));
    js.set_name("CrmRemoteError");
    let obj: &js_sys::Object = js.as_ref();
    set(obj, "status", &JsValue::from(e.status));
    set(obj, "code", &e.code.as_str().into());
    set(obj, "detail", &e.detail.as_str().into());
    js.into()
}
