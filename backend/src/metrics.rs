//! The back-end's Prometheus metrics: messages stored, outbound delivery results, reports,
//! queue depth and age, POP3 connector fetches. Encoded by the binary's `/metrics` endpoint.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Result {
    pub result: &'static str,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub messages_stored: Counter,
    pub local_deliveries: Counter,
    pub queued_recipients: Counter,
    pub delivery_attempts: Counter,
    pub recipient_results: Family<Result, Counter>,
    pub reports: Counter,
    pub queue_depth: Gauge,
    pub queue_oldest_seconds: Gauge,
    pub connector_polls: Family<Result, Counter>,
    pub connector_fetched: Counter,
    /// Failed logins by reason: wrong, locked_out, throttled (not checked).
    pub login_refusals: Family<Result, Counter>,
    /// RCPTs refused because the client asked for too many unknown recipients.
    pub harvest_refusals: Counter,
    /// Unauthenticated messages checked (SPF, DKIM, DMARC) by outcome: delivered, rejected,
    /// deferred.
    pub mail_auth_checks: Family<Result, Counter>,
    /// Message-tracking events dropped because the writer fell behind.
    pub tracking_events_dropped: Counter,
}

impl Metrics {
    /// The metrics, registered in `registry` under `bridgehead_backend_*`.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("bridgehead_backend");
        r.register(
            "messages_stored",
            "Messages committed from SMTP",
            m.messages_stored.clone(),
        );
        r.register(
            "tracking_events_dropped",
            "Message-tracking events dropped because their writer fell behind",
            m.tracking_events_dropped.clone(),
        );
        r.register(
            "local_deliveries",
            "Mailbox copies written from SMTP",
            m.local_deliveries.clone(),
        );
        r.register(
            "queued_recipients",
            "Outside recipients put in the queue",
            m.queued_recipients.clone(),
        );
        r.register(
            "delivery_attempts",
            "Outbound delivery attempts (queue entries tried)",
            m.delivery_attempts.clone(),
        );
        r.register(
            "recipient_results",
            "Outbound recipient results",
            m.recipient_results.clone(),
        );
        r.register(
            "reports",
            "Delivery status notifications generated",
            m.reports.clone(),
        );
        r.register(
            "queue_depth",
            "Messages in the outbound queue",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_oldest_seconds",
            "Age of the oldest queued message",
            m.queue_oldest_seconds.clone(),
        );
        r.register(
            "login_refusals",
            "Failed logins by reason (wrong, locked_out, throttled: not checked)",
            m.login_refusals.clone(),
        );
        r.register(
            "harvest_refusals",
            "Recipients refused for too many unknown recipients from the client address",
            m.harvest_refusals.clone(),
        );
        r.register(
            "mail_auth_checks",
            "Unauthenticated messages checked for SPF, DKIM and DMARC, by outcome",
            m.mail_auth_checks.clone(),
        );
        r.register(
            "connector_polls",
            "POP3 connector polls",
            m.connector_polls.clone(),
        );
        r.register(
            "connector_fetched",
            "Messages brought in by POP3 connectors",
            m.connector_fetched.clone(),
        );
        m
    }
}
