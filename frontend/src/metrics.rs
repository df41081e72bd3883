//! The front-end's Prometheus metrics: connections, sessions, authentication failures,
//! messages and bytes accepted and sent, and back-end call latency. Encoded by the binary's
//! HTTP endpoint (`/metrics`).
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Protocol {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Call {
    pub method: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Milter {
    pub milter: String,
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MilterName {
    pub milter: String,
}

#[derive(Debug)]
pub struct Metrics {
    pub connections: Family<Protocol, Counter>,
    pub open: Family<Protocol, Gauge>,
    pub refused: Family<Protocol, Counter>,
    pub logins: Family<Protocol, Counter>,
    pub auth_failures: Family<Protocol, Counter>,
    pub messages_accepted: Counter,
    pub bytes_accepted: Counter,
    pub recipient_cache_hits: Counter,
    /// RCPTs refused from the memory of harvesting client addresses.
    pub harvest_refusals: Counter,
    pub messages_retrieved: Counter,
    pub bytes_retrieved: Counter,
    pub backend_calls: Family<Call, Histogram>,
    /// Each milter's verdicts and how long each conversation took.
    pub milter_seconds: Family<Milter, Histogram>,
    /// Conversations that ended in the milter's default action (down, slow, nonsense).
    pub milter_failures: Family<MilterName, Counter>,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    /// The metrics, registered in `registry` under `bridgehead_frontend_*`.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            connections: Family::default(),
            open: Family::default(),
            refused: Family::default(),
            logins: Family::default(),
            auth_failures: Family::default(),
            messages_accepted: Counter::default(),
            bytes_accepted: Counter::default(),
            recipient_cache_hits: Counter::default(),
            harvest_refusals: Counter::default(),
            messages_retrieved: Counter::default(),
            bytes_retrieved: Counter::default(),
            backend_calls: Family::new_with_constructor(latency),
            milter_seconds: Family::new_with_constructor(latency),
            milter_failures: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("bridgehead_frontend");
        r.register(
            "connections",
            "Client connections accepted",
            m.connections.clone(),
        );
        r.register(
            "open_connections",
            "Client connections open now",
            m.open.clone(),
        );
        r.register(
            "refused_connections",
            "Connections refused by a limit",
            m.refused.clone(),
        );
        r.register("logins", "Successful logins", m.logins.clone());
        r.register("auth_failures", "Failed logins", m.auth_failures.clone());
        r.register(
            "messages_accepted",
            "Messages accepted over SMTP (after commit)",
            m.messages_accepted.clone(),
        );
        r.register(
            "bytes_accepted",
            "Octets of messages accepted over SMTP",
            m.bytes_accepted.clone(),
        );
        r.register(
            "recipient_cache_hits",
            "RCPT answers given again from the front-end's memory, without a back-end call",
            m.recipient_cache_hits.clone(),
        );
        r.register(
            "harvest_refusals",
            "RCPTs refused (450 4.7.1) because the client address asked for too many unknown recipients",
            m.harvest_refusals.clone(),
        );
        r.register(
            "messages_retrieved",
            "Messages sent by POP3 RETR",
            m.messages_retrieved.clone(),
        );
        r.register(
            "bytes_retrieved",
            "Octets sent by POP3 RETR",
            m.bytes_retrieved.clone(),
        );
        r.register(
            "backend_call_seconds",
            "Back-end gRPC call latency",
            m.backend_calls.clone(),
        );
        r.register(
            "milter_seconds",
            "Milter conversations by milter and verdict, and their latency",
            m.milter_seconds.clone(),
        );
        r.register(
            "milter_failures",
            "Milter conversations that failed and took the milter's default action",
            m.milter_failures.clone(),
        );
        m
    }

    pub fn milter_verdict(&self, milter: &str, verdict: &'static str, took: Duration) {
        let label = Milter {
            milter: milter.to_string(),
            verdict,
        };
        self.milter_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    pub fn milter_failure(&self, milter: &str) {
        let label = MilterName {
            milter: milter.to_string(),
        };
        self.milter_failures.get_or_create(&label).inc();
    }

    pub fn call(&self, method: &'static str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.backend_calls
            .get_or_create(&Call { method, outcome })
            .observe(took.as_secs_f64());
    }
}

/// Counts a connection open for as long as it lives.
pub struct OpenConnection<'a> {
    metrics: &'a Metrics,
    protocol: &'static str,
}

impl<'a> OpenConnection<'a> {
    pub fn new(metrics: &'a Metrics, protocol: &'static str) -> Self {
        metrics
            .connections
            .get_or_create(&Protocol { protocol })
            .inc();
        metrics.open.get_or_create(&Protocol { protocol }).inc();
        OpenConnection { metrics, protocol }
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.metrics
            .open
            .get_or_create(&Protocol {
                protocol: self.protocol,
            })
            .dec();
    }
}
