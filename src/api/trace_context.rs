//! A request's place in its caller's trace: the W3C `traceparent` a caller sends (gRPC metadata
//! or HTTP header) becomes the parent of the request's span when traces are exported
//! (`--otlp-endpoint`, feature `otel`), and the request's trace id goes into the log records'
//! cause, so a record links to its trace. Without the `otel` feature nothing is read and no
//! trace id is recorded.
//! Does not export anything (see `cli::telemetry`).

/// Read access to a request's headers, whatever the transport.
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for tonic::metadata::MetadataMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Headers for axum::http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Makes `span` a child of the caller's trace (when traces are exported and the caller sent a
/// valid `traceparent`) and returns the request's trace id: 32 lowercase hex digits, or empty
/// when the request is in no trace. The id is also recorded in the span's `trace_id` field,
/// when it has one, so every log line of the request carries it.
pub fn continue_trace(span: &tracing::Span, headers: &impl Headers) -> String {
    let trace_id = trace_id_of(span, headers);
    if !trace_id.is_empty() {
        span.record("trace_id", trace_id.as_str());
    }
    trace_id
}

#[cfg(feature = "otel")]
fn trace_id_of(span: &tracing::Span, headers: &impl Headers) -> String {
    use opentelemetry::propagation::{Extractor, TextMapPropagator};
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    struct Extract<'a, H>(&'a H);
    impl<H: Headers> Extractor for Extract<'_, H> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.header(key)
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent", "tracestate"]
        }
    }

    let caller = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Extract(headers));
    let caller_trace = caller.span().span_context().clone();
    if caller_trace.is_valid() {
        // Fails only when no tracing-opentelemetry layer is installed (no --otlp-endpoint).
        let _ = span.set_parent(caller);
    }
    let ours = span.context().span().span_context().clone();
    if ours.is_valid() {
        ours.trace_id().to_string()
    } else if caller_trace.is_valid() {
        caller_trace.trace_id().to_string()
    } else {
        String::new()
    }
}

#[cfg(not(feature = "otel"))]
fn trace_id_of(_span: &tracing::Span, _headers: &impl Headers) -> String {
    String::new()
}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use super::*;

    fn metadata(traceparent: Option<&str>) -> tonic::metadata::MetadataMap {
        let mut map = tonic::metadata::MetadataMap::new();
        if let Some(value) = traceparent {
            map.insert("traceparent", value.parse().unwrap());
        }
        map
    }

    #[test]
    fn without_an_exporter_the_callers_trace_id_is_still_recorded_and_bad_ones_are_not() {
        let span = tracing::info_span!("rpc");
        let traced = metadata(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(continue_trace(&span, &traced), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(continue_trace(&span, &metadata(None)), "");
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(continue_trace(&span, &metadata(Some(bad))), "", "{bad}");
        }
    }
}
