//! `--metrics-listen`: the operator's HTTP port. `GET /metrics` renders every metric of
//! `crate::metrics` and the process's own (`process_*`: CPU, resident memory, open files) in
//! Prometheus's text format; `GET /healthz` answers 200 while the process serves (liveness);
//! `GET /readyz` answers 200 while writes can succeed and 503 with the reason while they cannot
//! (a failed write or fsync, the free-space reserve, an unreachable etcd). The recorder is the
//! process's one global recorder, installed once.
//! Does not decide what is measured (see `crate::metrics`).

use std::future::Future;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::metrics::GROUP_COMMANDS;
use crate::store::Store;

/// Buckets of every `_seconds` histogram: 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the group-size histogram.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// The installed recorder's handle; `None` when another recorder was installed first.
static RECORDER: OnceLock<Result<(PrometheusHandle, metrics_process::Collector), String>> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and describes every metric.
fn recorder() -> Result<&'static (PrometheusHandle, metrics_process::Collector), String> {
    RECORDER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(GROUP_COMMANDS.into()), GROUP_BUCKETS))
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            crate::metrics::describe();
            let process = metrics_process::Collector::default();
            process.describe();
            Ok((handle, process))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Installs the recorder, so that what the store and the front ends record from now on is kept.
/// Call before serving; fails if another global recorder is installed.
pub fn install() -> Result<(), String> {
    recorder().map(|_| ())
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    install().map_err(std::io::Error::other)?;
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(store);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn render(State(store): State<Store>) -> Response {
    let Ok((handle, process)) = recorder() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder\n").into_response();
    };
    let body = tokio::task::spawn_blocking(move || {
        crate::metrics::store_figures(crate::metrics::StoreFigures {
            head: store.head_seq(),
            history: store.history_seq(),
            tasks: store.task_count(),
            by_cluster: store.tasks_by_cluster(),
            active_by_cluster: store.cluster_task_counts(),
            writes_refused: store.writable().is_err(),
            disk_bytes: store.size_on_disk().ok(),
            available_bytes: store.available_space(),
        });
        process.collect();
        handle.run_upkeep();
        handle.render()
    })
    .await;
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering failed: {e}\n")).into_response(),
    }
}

async fn ready(State(store): State<Store>) -> Response {
    let writable = tokio::task::spawn_blocking(move || store.writable())
        .await
        .unwrap_or_else(|e| Err(format!("the check did not complete: {e}")));
    match writable {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response(),
    }
}
