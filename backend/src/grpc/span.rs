//! One server span per gRPC call, joined to the caller's trace.
//!
//! One job: read the W3C trace context (`traceparent`, `tracestate`) that a front-end put in
//! the request headers and run the call inside a span whose parent is the front-end's span,
//! so one SMTP transaction or POP3 command is one trace across both tiers. Without a
//! propagator installed (no OTLP export configured) the span is a plain `tracing` span.
use std::task::{Context, Poll};
use tonic::codegen::http;
use tracing::Instrument;

/// The tower layer that wraps every service of the gRPC server.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcSpanLayer;

impl<S> tower::Layer<S> for RpcSpanLayer {
    type Service = RpcSpan<S>;

    fn layer(&self, inner: S) -> RpcSpan<S> {
        RpcSpan(inner)
    }
}

#[derive(Debug, Clone)]
pub struct RpcSpan<S>(S);

impl<S, B> tower::Service<http::Request<B>> for RpcSpan<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let span = span_for(&req);
        self.0.call(req).instrument(span)
    }
}

/// `bridgehead.v1.Delivery/Submit` for `/bridgehead.v1.Delivery/Submit`, parented to the
/// caller's span when the request carries one.
fn span_for<B>(req: &http::Request<B>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Headers<'a>(&'a http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    let method = req.uri().path().trim_start_matches('/');
    let span = tracing::info_span!(
        "rpc",
        otel.name = method,
        otel.kind = "server",
        rpc.system = "grpc"
    );
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
    // Fails only when no OpenTelemetry layer is installed: then there is no trace to join.
    let _ = span.set_parent(parent);
    span
}
