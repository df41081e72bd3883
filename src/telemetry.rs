//! Logging and tracing set-up for the long-running roles.
//!
//! One job: install the `tracing` subscriber — text or JSON logs on stderr, filtered by
//! `RUST_LOG` — and, when an OTLP endpoint is configured, an OpenTelemetry layer that exports
//! spans over OTLP/gRPC. Configured only by the standard variables:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns export on,
//! `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true` turns it off, `OTEL_SERVICE_NAME`
//! and `OTEL_RESOURCE_ATTRIBUTES` name the process, `OTEL_BSP_*` tune batching. The W3C trace
//! context propagator is installed so front-ends carry the trace to back-ends in gRPC metadata.
//! Invariant: must run inside the Tokio runtime (the OTLP client is a tonic channel).
use anyhow::Context;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the span exporter alive; `shutdown` sends what is still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes buffered spans (bounded by the exporter's own timeout) and stops exporting.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                eprintln!("bridgehead: exporting the last spans failed: {e}");
            }
        }
    }
}

/// Whether the environment asks for OTLP trace export.
fn otlp_wanted() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let is = |k: &str, v: &str| std::env::var(k).is_ok_and(|x| x.trim().eq_ignore_ascii_case(v));
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_TRACES_EXPORTER", "none")
        && !is("OTEL_SDK_DISABLED", "true")
}

fn tracer_provider(service: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .context("OTLP span exporter (check OTEL_EXPORTER_OTLP_ENDPOINT)")?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service.to_string());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Installs the subscriber for a role (`service` is the default `service.name`).
pub fn init(format: &str, service: &str) -> anyhow::Result<Telemetry> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if format == "json" {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    // Logs are events only: spans go to the trace exporter. Left out of the fmt layer, a span
    // with no exporter installed costs nothing (its callsite is disabled).
    let events_only = tracing_subscriber::filter::DynFilterFn::new(|m, _| m.is_event())
        .with_callsite_filter(|m| match m.is_event() {
            true => tracing::subscriber::Interest::sometimes(),
            false => tracing::subscriber::Interest::never(),
        });
    let registry =
        tracing_subscriber::registry().with(fmt.with_filter(filter()).with_filter(events_only));
    if !otlp_wanted() {
        registry
            .try_init()
            .context("installing the log subscriber")?;
        return Ok(Telemetry { provider: None });
    }
    use opentelemetry::trace::TracerProvider;
    let provider = tracer_provider(service)?;
    let tracer = provider.tracer("bridgehead");
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    registry
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(filter()),
        )
        .try_init()
        .context("installing the log and trace subscriber")?;
    Ok(Telemetry {
        provider: Some(provider),
    })
}
