//! Where the binary's logs and traces go: log lines on stderr (`--log-format text|json`, level
//! from `RUST_LOG`), and with `--otlp-endpoint` (feature `otel`) the same spans exported over
//! OTLP/gRPC in batches, each `rpc` span a child of the caller's `traceparent`. The guard flushes
//! the spans still batched when the command ends.
//! Does not decide what is logged or traced (the code's `tracing` calls do).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Keeps the trace exporter alive; flushes it when dropped.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    traces: Option<(opentelemetry_sdk::trace::SdkTracerProvider, tokio::runtime::Runtime)>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some((provider, runtime)) = self.traces.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: exporting the last traces failed: {e}");
            }
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// Where traces go and how many: `ratio` of the requests that come without a sampled
/// `traceparent` (those that come with one are traced as their caller decided).
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub struct Otlp<'a> {
    pub endpoint: &'a str,
    pub ratio: f64,
}

/// Installs the global subscriber: logs at `default_level` unless `RUST_LOG` says otherwise,
/// and traces over OTLP when asked.
pub fn init(format: LogFormat, default_level: &str, otlp: Option<Otlp>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(true).boxed(),
    };
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut layers = vec![logs.with_filter(filter).boxed()];
    #[cfg(feature = "otel")]
    let traces = match otlp {
        Some(to) => {
            let (layer, traces) = otlp_layer(to)?;
            layers.push(layer);
            Some(traces)
        }
        None => None,
    };
    #[cfg(not(feature = "otel"))]
    if otlp.is_some() {
        anyhow::bail!("--otlp-endpoint needs a taskledger built with the `otel` feature");
    }
    tracing_subscriber::registry().with(layers).init();
    Ok(Telemetry {
        #[cfg(feature = "otel")]
        traces,
    })
}

/// A layer exporting taskledger's spans at info level and above over OTLP/gRPC. tonic's client
/// needs a tokio runtime: it gets one of its own, which lives as long as the exporter and shares
/// nothing with the server's.
#[cfg(feature = "otel")]
#[allow(clippy::type_complexity)]
fn otlp_layer(
    Otlp { endpoint, ratio }: Otlp,
) -> anyhow::Result<(
    Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>,
    (opentelemetry_sdk::trace::SdkTracerProvider, tokio::runtime::Runtime),
)> {
    use anyhow::Context;
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::WithExportConfig;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("taskledger-otlp")
        .enable_all()
        .build()
        .context("starting the trace exporter's runtime")?;
    let exporter = {
        let _entered = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("--otlp-endpoint {endpoint}"))?
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("taskledger")
        .build();
    anyhow::ensure!(
        (0.0..=1.0).contains(&ratio),
        "--otlp-sample-ratio must be between 0 and 1, not {ratio}"
    );
    let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(ratio),
    ));
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("taskledger");
    let only_ours = tracing_subscriber::filter::Targets::new().with_target("taskledger", tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(only_ours)
        .boxed();
    Ok((layer, (provider, runtime)))
}
