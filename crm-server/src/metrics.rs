//! Prometheus metrics: request counts and latency histograms by route template and status, requests
//! in flight, requests shed, webhook deliveries. Served as OpenMetrics text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/api/v1/leads/{id}`), never the raw path, so cardinality stays bounded.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub shed: Counter,
    pub rate_limited: Counter,
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    /// Due events this instance's scheduler fired, by event kind.
    pub due_events: Family<KindLabels, Counter>,
    /// Database connections the store opened (SQLite readers), brought up to date on each scrape.
    pub store_connections_opened: Counter,
    /// Bearer tokens resolved, by where the answer came from: `cached` (no database work, no hop to
    /// the blocking pool) or `store`.
    pub auth_lookups: Family<OutcomeLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("crm");
        let requests = Family::<RequestLabels, Counter>::default();
        // 100 µs .. ~6.5 s, doubling.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 2.0, 17,
            ))
        });
        let in_flight = Gauge::default();
        let shed = Counter::default();
        let rate_limited = Counter::default();
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        let due_events = Family::<KindLabels, Counter>::default();
        let store_connections_opened = Counter::default();
        let auth_lookups = Family::<OutcomeLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to produce the response head",
            latency.clone(),
        );
        registry.register("http_requests_in_flight", "Requests being handled", in_flight.clone());
        registry.register(
            "http_requests_shed",
            "Requests refused with 503 at capacity",
            shed.clone(),
        );
        registry.register(
            "http_requests_rate_limited",
            "Requests refused with 429",
            rate_limited.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome",
            webhook_deliveries.clone(),
        );
        registry.register(
            "due_events",
            "Due events fired by this instance's scheduler, by kind",
            due_events.clone(),
        );
        registry.register(
            "store_connections_opened",
            "Database connections the store opened (SQLite readers; a server sized right opens none per request)",
            store_connections_opened.clone(),
        );
        registry.register(
            "auth_lookups",
            "Bearer tokens resolved, by where the answer came from (cached or store)",
            auth_lookups.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            shed,
            rate_limited,
            webhook_deliveries,
            due_events,
            store_connections_opened,
            auth_lookups,
        }
    }
}

impl Metrics {
    /// Brings the store's connection count up to `opened` (a counter only moves forward, also
    /// when two scrapes race).
    pub fn store_connections(&self, opened: u64) {
        self.store_connections_opened
            .inner()
            .fetch_max(opened, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts one bearer token resolved from the caller cache (`true`) or the store.
    pub fn auth_lookup(&self, cached: bool) {
        let outcome = if cached { "cached" } else { "store" };
        self.auth_lookups
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
