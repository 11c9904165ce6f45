//! Server settings: flags of `crm serve`, each also readable from the environment. Secrets come from
//! the environment or a file, never from a flag (flags show up in `ps`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `crm serve` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Load the demo roofing tenant if the database has no tenant yet (with users whose password is
    /// printed at start).
    #[arg(long)]
    pub demo: bool,
    /// File holding the JWT signing secret (at least 32 bytes). Else `CRM_JWT_SECRET`; else a random
    /// secret per process (tokens then die with the process and are not shared between instances).
    #[arg(long, env = "CRM_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// File holding the platform super-admin token (organizations API). Else `CRM_ADMIN_TOKEN`; else
    /// the organizations API is disabled.
    #[arg(long, env = "CRM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Origins allowed by CORS (repeatable, or comma-separated); none by default.
    #[arg(long = "cors-origin", env = "CRM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Requests handled at once; beyond it requests are shed with 503 and Retry-After.
    #[arg(long, env = "CRM_MAX_IN_FLIGHT", default_value_t = 512)]
    pub max_in_flight: usize,
    /// Requests per second per API key, user or (unauthenticated) client address.
    #[arg(long, env = "CRM_RATE_LIMIT", default_value_t = 200)]
    pub rate_limit: u32,
    /// Burst allowance on top of the rate.
    #[arg(long, env = "CRM_RATE_BURST", default_value_t = 400)]
    pub rate_burst: u32,
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "CRM_MAX_BODY", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Largest CSV import upload, in bytes.
    #[arg(long, env = "CRM_MAX_IMPORT", default_value_t = 256 << 20)]
    pub max_import: usize,
    /// Seconds a request may take before it is answered with 503.
    #[arg(long, env = "CRM_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    /// Seconds a connection may take to send a complete request head (also the idle time allowed
    /// between requests on a kept-alive connection); then it is closed (against slowloris).
    #[arg(long, env = "CRM_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C; then the remaining
    /// connections are closed and the server exits.
    #[arg(long, env = "CRM_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    pub shutdown_timeout: u64,
    /// Log as JSON lines (for log shippers) instead of text.
    #[arg(long, env = "CRM_LOG_JSON")]
    pub log_json: bool,
    /// Seconds between the due scheduler's passes (follow-ups falling due, hot leads left
    /// untouched, memberships starting to expire: see docs/followups.md).
    #[arg(long, env = "CRM_SCHEDULER_INTERVAL", default_value_t = 60)]
    pub scheduler_interval: u64,
    /// Let webhooks target loopback, private, link-local and other non-public addresses (testing with
    /// a local receiver only: it opens a server-side request forgery path).
    #[arg(long, env = "CRM_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// Seconds a resolved bearer token (session or API key, with its user and role) is kept in
    /// memory, so requests do not read them from the database each time (0: never kept). Sign-out,
    /// revoked keys, password, role and user changes made through this instance take effect on the
    /// next request regardless; made through another instance over the same database, within this
    /// many seconds.
    #[arg(long, env = "CRM_AUTH_CACHE", default_value_t = 5)]
    pub auth_cache: u64,
    /// Seconds the organization record that answers read for their computed fields (time zone,
    /// the membership and hot-lead windows) is kept in memory (0: read on every request). A change
    /// to the organization made through this instance takes effect on the next request; made
    /// through another instance over the same database, within this many seconds. Writes always
    /// read it from the database.
    #[arg(long, env = "CRM_ORG_CACHE", default_value_t = 5)]
    pub org_cache: u64,
}

/// Everything the server needs, resolved (secrets loaded).
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub jwt_secret: Vec<u8>,
    pub admin_token: Option<String>,
    pub cors_origins: Vec<String>,
    pub max_in_flight: usize,
    pub rate_limit: u32,
    pub rate_burst: u32,
    pub max_body: usize,
    pub max_import: usize,
    pub request_timeout: Duration,
    /// Time to a complete request head (and idle time between requests); then the connection closes.
    pub header_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing the remaining connections.
    pub shutdown_timeout: Duration,
    /// Lifetime of access tokens (JWT).
    pub access_ttl: Duration,
    /// Lifetime of a session (refresh tokens renew within it).
    pub session_ttl: Duration,
    /// Password hashes computed at once (each takes ~19 MiB and tens of milliseconds).
    pub max_hashing: usize,
    /// Failed sign-ins per account, and per client address, before sign-in is throttled.
    pub login_failures: u32,
    pub login_window: Duration,
    /// How often event streams and the webhook worker look for events written by other instances.
    pub poll_interval: Duration,
    pub webhook_timeout: Duration,
    /// Attempts at one event before a webhook gives up on it and moves on.
    pub webhook_max_attempts: u32,
    /// Which addresses webhooks may target, at registration and at delivery.
    pub webhook_addresses: crm_core::address::AddressPolicy,
    /// Time between the due scheduler's passes.
    pub scheduler_interval: Duration,
    /// How long a resolved bearer token is kept ([`crm_core::service::Service::with_caller_cache`]).
    pub auth_cache: Duration,
    /// How long the organization that answers read is kept ([`crm_core::service::Service::with_org_cache`]).
    pub org_cache: Duration,
}

impl Config {
    /// The core's webhook retry schedule with this server's attempt limit.
    pub fn retry_policy(&self) -> crm_core::delivery::RetryPolicy {
        crm_core::delivery::RetryPolicy {
            max_attempts: self.webhook_max_attempts,
            ..Default::default()
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("jwt_secret", &"<secret>")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<secret>"))
            .field("max_in_flight", &self.max_in_flight)
            .field("rate_limit", &self.rate_limit)
            .field("webhook_addresses", &self.webhook_addresses)
            .field("auth_cache", &self.auth_cache)
            .field("org_cache", &self.org_cache)
            .finish_non_exhaustive()
    }
}

/// A configuration problem found at start.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn secret(file: Option<&PathBuf>, env: &str) -> Result<Option<String>, ConfigError> {
    if let Some(p) = file {
        let s = std::fs::read_to_string(p).map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
        return Ok(Some(s.trim().to_owned()));
    }
    Ok(std::env::var(env)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

impl Config {
    /// Settings for tests and embedding: loopback, a random JWT secret, the defaults of `crm serve`.
    pub fn for_tests() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: crate::auth::tokens::random_bytes(32),
            admin_token: None,
            cors_origins: Vec::new(),
            max_in_flight: 512,
            rate_limit: 1000,
            rate_burst: 2000,
            max_body: 1 << 20,
            max_import: 64 << 20,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            access_ttl: Duration::from_secs(15 * 60),
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            max_hashing: 4,
            login_failures: 5,
            login_window: Duration::from_secs(15 * 60),
            poll_interval: Duration::from_millis(500),
            webhook_timeout: Duration::from_secs(10),
            webhook_max_attempts: crm_core::delivery::RetryPolicy::default().max_attempts,
            webhook_addresses: crm_core::address::AddressPolicy::Public,
            scheduler_interval: Duration::from_millis(500),
            auth_cache: Duration::from_secs(5),
            org_cache: Duration::from_secs(5),
        }
    }

    pub fn from_args(a: &ServeArgs) -> Result<Config, ConfigError> {
        let jwt_secret = match secret(a.jwt_secret_file.as_ref(), "CRM_JWT_SECRET")? {
            Some(s) if s.len() < 32 => return Err(ConfigError("the JWT secret must be at least 32 bytes".into())),
            Some(s) => s.into_bytes(),
            None => {
                tracing::warn!(
                    "no JWT secret configured (CRM_JWT_SECRET or --jwt-secret-file): using a random one; \
                     tokens end with this process and are not valid on other instances"
                );
                crate::auth::tokens::random_bytes(32)
            }
        };
        let admin_token = secret(a.admin_token_file.as_ref(), "CRM_ADMIN_TOKEN")?;
        if admin_token.as_ref().is_some_and(|t| t.len() < 32) {
            return Err(ConfigError("the admin token must be at least 32 bytes".into()));
        }
        Ok(Config {
            listen: a.listen,
            jwt_secret,
            admin_token,
            cors_origins: a.cors_origins.clone(),
            max_in_flight: a.max_in_flight.max(1),
            rate_limit: a.rate_limit.max(1),
            rate_burst: a.rate_burst.max(1),
            max_body: a.max_body,
            max_import: a.max_import,
            request_timeout: Duration::from_secs(a.request_timeout.max(1)),
            header_timeout: Duration::from_secs(a.header_timeout.max(1)),
            shutdown_timeout: Duration::from_secs(a.shutdown_timeout),
            scheduler_interval: Duration::from_secs(a.scheduler_interval.max(1)),
            auth_cache: Duration::from_secs(a.auth_cache),
            org_cache: Duration::from_secs(a.org_cache),
            webhook_addresses: if a.allow_private_webhooks {
                tracing::warn!("webhooks may target private and loopback addresses (--allow-private-webhooks)");
                crm_core::address::AddressPolicy::Any
            } else {
                crm_core::address::AddressPolicy::Public
            },
            ..Config::for_tests()
        })
    }
}
