//! Prometheus metrics and the health endpoints of `imgworker serve`.
//!
//! `/metrics` (Prometheus text format), `/healthz` (the process is alive)
//! and `/readyz` (connected to the broker and consuming). Labels hold only
//! status, error code, stage and backend: never keys, ids or content.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::backend::BackendKind;
use crate::result::{ResultMessage, Status};

/// Labels of the job counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `succeeded` or `failed`.
    pub status: String,
    /// The error code, or empty on success.
    pub code: String,
    /// `gpu`, `cpu`, or empty (`None`) when no pixels were processed.
    pub backend: Option<BackendKind>,
}

/// The label value is the kind's string form, `cpu` or `gpu`.
impl EncodeLabelValue for BackendKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// Labels of the stage histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// fetch, decode, ops, encode, store or total.
    pub stage: String,
}

/// Labels of the broker node gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    /// The node's `host:port`.
    pub node: String,
}

/// Every metric the worker keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs finished, by status, error code and backend.
    pub jobs: Family<JobLabels, Counter>,
    /// Stage durations of successful jobs, seconds.
    pub stages: Family<StageLabels, Histogram>,
    /// Jobs being processed now.
    pub(crate) in_flight: Gauge,
    /// Transient failures sent back to the queue for another attempt.
    pub retries: Counter,
    /// Messages dead-lettered by the worker.
    pub(crate) dead_lettered: Counter,
    /// Broker (re)connections after the first.
    pub(crate) reconnects: Counter,
    /// Jobs the GPU failed and the CPU redid.
    pub(crate) gpu_fallbacks: Counter,
    /// 1, labelled with the broker node the worker is connected to (no
    /// series while it is not connected).
    pub broker_node: Family<NodeLabels, Gauge>,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("imgworker");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs finished, by status and error code",
            jobs.clone(),
        );
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "stage_duration_seconds",
            "Time spent per job stage",
            stages.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("jobs_in_flight", "Jobs being processed", in_flight.clone());
        let retries = Counter::default();
        registry.register(
            "retries",
            "Transient failures requeued for another attempt",
            retries.clone(),
        );
        let dead_lettered = Counter::default();
        registry.register(
            "dead_lettered",
            "Messages dead-lettered by the worker",
            dead_lettered.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "broker_reconnects",
            "Reconnections to the broker",
            reconnects.clone(),
        );
        let gpu_fallbacks = Counter::default();
        registry.register(
            "gpu_fallbacks",
            "Jobs redone on the CPU after a GPU failure",
            gpu_fallbacks.clone(),
        );
        let broker_node = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "broker_connected",
            "1, labelled with the broker node the worker is connected to",
            broker_node.clone(),
        );
        Self {
            registry,
            broker_node,
            jobs,
            stages,
            in_flight,
            retries,
            dead_lettered,
            reconnects,
            gpu_fallbacks,
            ready: AtomicBool::new(false),
        }
    }

    /// Count a finished job and its stage timings.
    pub(crate) fn record(&self, result: &ResultMessage, gpu_fallback: bool) {
        let code = result
            .error
            .as_ref()
            .map(|e| e.code.as_str().to_string())
            .unwrap_or_default();
        self.jobs
            .get_or_create(&JobLabels {
                status: result.status.as_str().to_string(),
                code,
                backend: result.backend,
            })
            .inc();
        if gpu_fallback {
            self.gpu_fallbacks.inc();
        }
        if let (Status::Succeeded, Some(t)) = (result.status, &result.timings_ms) {
            for (stage, ms) in [
                ("fetch", t.fetch),
                ("decode", t.decode),
                ("ops", t.ops),
                ("encode", t.encode),
                ("store", t.store),
                ("total", t.total),
            ] {
                self.stages
                    .get_or_create(&StageLabels {
                        stage: stage.to_string(),
                    })
                    .observe(ms / 1000.0);
            }
        }
    }

    /// The broker node the worker is connected to now (`None`: none).
    pub(crate) fn set_broker_node(&self, node: Option<&str>) {
        self.broker_node.clear();
        if let Some(node) = node {
            self.broker_node
                .get_or_create(&NodeLabels {
                    node: node.to_string(),
                })
                .set(1);
        }
    }

    /// Mark the worker ready (connected and consuming) or not.
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the worker is connected and consuming.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(m): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if m.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to the broker\n",
        )
    }
}

/// The HTTP routes: `/metrics`, `/healthz`, `/readyz`.
pub(crate) fn router(m: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(m)
}

/// Serve the routes on `addr` until the task is dropped.
pub async fn serve(addr: std::net::SocketAddr, m: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics and health endpoints listening");
    axum::serve(listener, router(m)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JobError;
    use crate::job::Identity;

    #[test]
    fn jobs_are_labelled_by_status_code_and_backend() {
        let m = Metrics::new();
        let failed = ResultMessage::failed(
            &Identity::default(),
            &JobError::invalid_param("x: must be in 1..=2"),
            1,
            "w",
        );
        let ok = ResultMessage {
            status: Status::Succeeded,
            error: None,
            backend: Some(BackendKind::Gpu),
            ..failed.clone()
        };
        m.record(&failed, false);
        m.record(&ok, true);
        let text = m.encode();
        for needle in [
            "imgworker_jobs_total{status=\"failed\",code=\"invalid_param\",backend=\"\"} 1",
            "imgworker_jobs_total{status=\"succeeded\",code=\"\",backend=\"gpu\"} 1",
            "imgworker_gpu_fallbacks_total 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
