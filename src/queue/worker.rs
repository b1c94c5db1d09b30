//! `imgworker serve`: consume jobs until told to stop, then drain.
//!
//! One session is one connection with two channels: a consumer channel
//! (manual acks, prefetch = concurrency) and a publisher channel in confirm
//! mode. Each delivery runs in its own task (a panic fails the job, not the
//! worker), its pixel work on the blocking pool, so decode, GPU/CPU work
//! and encode of different jobs overlap. When the connection dies, a new
//! session is opened with backoff; tasks of the dead session finish but
//! cannot ack, so their jobs come back and, being idempotent, produce the
//! same objects.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, error, info, info_span, warn, Instrument};

use super::publish::{self, header_int, header_str};
use super::signing::{KEY_ID_HEADER, SIGNATURE_HEADER};
use super::{BrokerEndpoint, QueueError, SigningKeys, Topology};
use crate::error::{ErrorCode, JobError};
use crate::job::identify;
use crate::metrics::Metrics;
use crate::pipeline::Engine;
use crate::result::{ResultMessage, Status};

/// Settings of `imgworker serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The broker: `amqp://` or `amqps://` URL (vhost in the path,
    /// `?heartbeat=` honoured) and TLS files.
    pub broker: BrokerEndpoint,
    /// Queue and exchange names, delivery limit.
    pub topology: Topology,
    /// Jobs processed at once (also the prefetch).
    pub concurrency: usize,
    /// How long a drain waits for jobs in flight.
    pub grace: Duration,
    /// Keys jobs must be signed with (empty: signing off).
    pub signing: SigningKeys,
    /// First retry delay of a transient failure (doubles per attempt, at most 30 s).
    pub retry_backoff: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
}

impl ServeConfig {
    /// Settings with defaults for everything but the broker.
    pub fn new(broker: BrokerEndpoint) -> Self {
        Self {
            broker,
            topology: Topology::default(),
            concurrency: 2,
            grace: Duration::from_secs(30),
            signing: SigningKeys::default(),
            retry_backoff: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(10),
        }
    }
}

/// Redact the password of an AMQP URL for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

struct Shared {
    engine: Engine,
    cfg: ServeConfig,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
}

enum SessionEnd {
    /// Shutdown requested; consumption was cancelled. The consumer channel
    /// stays open (dropping it closes it) so that jobs in flight can ack.
    Drain(Box<(Connection, Channel, lapin::Consumer)>),
    /// The connection or consumer died.
    Lost(String),
}

/// Consume jobs until `shutdown` turns true, then stop consuming, finish the
/// jobs in flight (at most `grace`), close the connection and return.
pub async fn serve(
    engine: Engine,
    cfg: ServeConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), QueueError> {
    if cfg.concurrency == 0 || cfg.concurrency > usize::from(u16::MAX) {
        return Err(QueueError::Config("concurrency must be 1..=65535".into()));
    }
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(cfg.concurrency)),
        engine,
        cfg,
        metrics,
    });
    let mut backoff = Duration::from_millis(100);
    let mut sessions = 0u64;
    loop {
        if *shutdown.borrow() {
            return drain(&shared, None).await;
        }
        match session(&shared, &mut shutdown, sessions).await {
            Ok(SessionEnd::Drain(held)) => {
                let (conn, channel, consumer) = *held;
                let done = drain(&shared, Some(conn)).await;
                drop((channel, consumer));
                return done;
            }
            Ok(SessionEnd::Lost(why)) => {
                shared.metrics.set_ready(false);
                warn!(reason = %why, "lost the broker; reconnecting");
                sessions += 1;
                backoff = Duration::from_millis(100);
            }
            Err(e @ QueueError::Tls(_)) => {
                shared.metrics.set_ready(false);
                error!(error = %e, "cannot connect to the broker securely; stopping");
                return Err(e);
            }
            Err(e) => {
                shared.metrics.set_ready(false);
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach the broker");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => {}
        }
        backoff = (backoff * 2).min(shared.cfg.reconnect_max);
    }
}

async fn drain(shared: &Shared, conn: Option<Connection>) -> Result<(), QueueError> {
    shared.metrics.set_ready(false);
    let n = shared.cfg.concurrency as u32;
    info!(
        in_flight = shared.cfg.concurrency - shared.slots.available_permits(),
        grace_s = shared.cfg.grace.as_secs_f64(),
        "draining"
    );
    match tokio::time::timeout(shared.cfg.grace, shared.slots.acquire_many(n)).await {
        Ok(_) => info!("every job in flight finished"),
        Err(_) => warn!("grace period over; unfinished jobs will be redelivered"),
    }
    // Closing the connection hands any prefetched, unstarted job back.
    if let Some(conn) = conn {
        let _ = conn.close(200, "worker shutting down".into()).await;
    }
    Ok(())
}

async fn session(
    shared: &Arc<Shared>,
    shutdown: &mut watch::Receiver<bool>,
    previous: u64,
) -> Result<SessionEnd, QueueError> {
    let cfg = &shared.cfg;
    let props = ConnectionProperties::default()
        .with_connection_name(format!("imgworker {}", shared.engine.config().worker_name).into());
    let conn = cfg.broker.connect(props).await?;
    let publisher = conn.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    cfg.topology.declare(&publisher).await?;
    let consumer_ch = conn.create_channel().await?;
    consumer_ch
        .basic_qos(cfg.concurrency as u16, BasicQosOptions::default())
        .await?;
    let tag = format!("imgworker-{}-{previous}", std::process::id());
    let mut consumer = consumer_ch
        .basic_consume(
            cfg.topology.jobs_queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    if previous > 0 {
        shared.metrics.reconnects.inc();
    }
    shared.metrics.set_ready(true);
    info!(url = %redact(cfg.broker.url()), queue = %cfg.topology.jobs_queue, concurrency = cfg.concurrency, "consuming");
    // Jobs in flight can hold every slot while the connection dies under
    // them; watching the connection itself ends the session even then.
    let mut events = conn.events_listener();
    loop {
        // Take a slot first, so no more than `concurrency` jobs run.
        let permit = tokio::select! {
            p = shared.slots.clone().acquire_owned() => p.expect("semaphore never closed"),
            why = connection_lost(&conn, &mut events) => return Ok(SessionEnd::Lost(why)),
            _ = shutdown.changed() => {
                let _ = consumer_ch.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                return Ok(SessionEnd::Drain(Box::new((conn, consumer_ch, consumer))));
            }
        };
        let next = tokio::select! {
            d = consumer.next() => d,
            why = connection_lost(&conn, &mut events) => return Ok(SessionEnd::Lost(why)),
            _ = shutdown.changed() => {
                let _ = consumer_ch.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                return Ok(SessionEnd::Drain(Box::new((conn, consumer_ch, consumer))));
            }
        };
        let delivery = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Ok(SessionEnd::Lost(e.to_string())),
            None => return Ok(SessionEnd::Lost("the broker cancelled the consumer".into())),
        };
        let shared = shared.clone();
        let publisher = publisher.clone();
        tokio::spawn(async move {
            shared.metrics.in_flight.inc();
            handle(&shared, &publisher, delivery).await;
            shared.metrics.in_flight.dec();
            drop(permit);
        });
    }
}

/// Resolves when the connection reports an error or is no longer connected
/// (checked every second as well, in case no event comes).
async fn connection_lost(
    conn: &Connection,
    events: &mut (impl futures_lite::Stream<Item = lapin::Event> + Unpin),
) -> String {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                // Channel-level errors come here too: only a connection that
                // is no longer connected ends the session.
                Some(lapin::Event::Error(e)) if !conn.status().connected() => return e.to_string(),
                Some(_) => {}
                None => return "the connection's event stream ended".into(),
            },
            _ = tick.tick() => {
                if !conn.status().connected() {
                    return "the connection is closed".into();
                }
            }
        }
    }
}

/// What to do with a delivery once its job has run.
enum Disposition {
    /// Done (succeeded, or failed and dead-lettered): ack.
    Ack,
    /// Transient failure: requeue after a pause.
    Retry,
}

async fn handle(shared: &Shared, publisher: &Channel, delivery: Delivery) {
    let headers = delivery.properties.headers().as_ref();
    // Quorum queues count earlier deliveries in x-delivery-count.
    let attempt = header_int(headers, "x-delivery-count")
        .map_or(1, |n| n.max(0) as u32 + 1)
        .max(if delivery.redelivered { 2 } else { 1 });
    let ident = identify(&delivery.data);
    let span = info_span!(
        "delivery",
        job_id = ident.id.as_deref().unwrap_or(""),
        attempt
    );
    async {
        let cfg = &shared.cfg;
        // Signature first: an unsigned job never reaches storage.
        let result = if cfg.signing.enabled() {
            let key_id = header_str(headers, KEY_ID_HEADER);
            let sig = header_str(headers, SIGNATURE_HEADER);
            match cfg
                .signing
                .verify(key_id.as_deref(), sig.as_deref(), &delivery.data)
            {
                Ok(()) => None,
                Err(e) => Some(ResultMessage::failed(
                    ident.id.clone(),
                    ident.kind,
                    ident.image.clone(),
                    &JobError::new(ErrorCode::InvalidSignature, e.to_string()),
                    attempt,
                    &shared.engine.config().worker_name,
                )),
            }
        } else {
            None
        };
        let (result, fallback) = match result {
            Some(r) => (r, false),
            None => run_isolated(shared, &delivery.data, attempt, &ident).await,
        };
        let disposition = settle(shared, publisher, &delivery, &result, attempt).await;
        let unsettled = match disposition {
            Ok(Disposition::Ack) => {
                shared.metrics.record(&result, fallback);
                let acked = delivery.acker.ack(BasicAckOptions::default()).await;
                debug!(status = result.status.as_str(), "acked");
                failure(acked, "ack")
            }
            Ok(Disposition::Retry) => {
                shared.metrics.retries.inc();
                let pause = cfg
                    .retry_backoff
                    .saturating_mul(1 << attempt.saturating_sub(1).min(6))
                    .min(Duration::from_secs(30));
                tokio::time::sleep(pause).await;
                failure(delivery.acker.nack(REQUEUE).await, "nack")
            }
            Err(e) => {
                // Not settled (the broker did not confirm): give the job back.
                warn!(error = %e, "could not publish; the job goes back to the queue");
                failure(delivery.acker.nack(REQUEUE).await, "nack")
            }
        };
        let Some(outcome) = unsettled else { return };
        warn!(reason = %outcome, "delivery not settled; the broker will redeliver the job");
    }
    .instrument(span)
    .await
}

const REQUEUE: BasicNackOptions = BasicNackOptions {
    multiple: false,
    requeue: true,
};

/// Why an ack or nack did not take effect (lapin answers `Ok(false)` when
/// the channel was closed or recovered), or `None` when it did.
fn failure(res: Result<bool, lapin::Error>, what: &str) -> Option<String> {
    match res {
        Ok(true) => None,
        Ok(false) => Some(format!("the channel was closed before the {what}")),
        Err(e) => Some(e.to_string()),
    }
}

/// Run the job in its own task, so that a panic is a failed attempt.
async fn run_isolated(
    shared: &Shared,
    body: &[u8],
    attempt: u32,
    ident: &crate::job::Identity,
) -> (ResultMessage, bool) {
    let engine = shared.engine.clone();
    let body = body.to_vec();
    let job = tokio::spawn(async move { engine.run(&body, attempt).await });
    match job.await {
        Ok(outcome) => {
            // The GPU was configured but the pixels were made on the CPU.
            let fallback =
                shared.engine.backend_name() == "gpu" && outcome.stats.backend == Some("cpu");
            (outcome.result, fallback)
        }
        Err(e) => {
            error!(error = %e, "the job's task panicked");
            let err = JobError::internal("the job's task failed unexpectedly");
            let r = ResultMessage::failed(
                ident.id.clone(),
                ident.kind,
                ident.image.clone(),
                &err,
                attempt,
                &shared.engine.config().worker_name,
            );
            (r, false)
        }
    }
}

/// Publish the result and dead-letter where needed; decide ack or retry.
async fn settle(
    shared: &Shared,
    publisher: &Channel,
    delivery: &Delivery,
    result: &ResultMessage,
    attempt: u32,
) -> Result<Disposition, QueueError> {
    let topo = &shared.cfg.topology;
    let props = &delivery.properties;
    // The error code of a failed job; `None` when it succeeded.
    let failed = (result.status != Status::Succeeded).then(|| {
        result
            .error
            .as_ref()
            .map_or(ErrorCode::Internal, |e| e.code)
    });
    if let Some(code) = failed {
        if code.is_transient() && attempt <= topo.delivery_limit {
            warn!(code = code.as_str(), "transient failure; retrying later");
            return Ok(Disposition::Retry);
        }
        warn!(code = code.as_str(), "job failed; dead-lettering it");
    }
    publish::result(
        publisher,
        &topo.results_exchange,
        result,
        props.reply_to().as_ref(),
        props.correlation_id().as_ref(),
    )
    .await?;
    let Some(code) = failed else {
        return Ok(Disposition::Ack);
    };
    publish::dead_letter(
        publisher,
        &topo.dead_letter_exchange,
        &delivery.data,
        props,
        code.as_str(),
        attempt,
    )
    .await?;
    shared.metrics.dead_lettered.inc();
    Ok(Disposition::Ack)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("amqp://user:s3cret@host:5672/vh"),
            "amqp://user:***@host:5672/vh"
        );
        assert_eq!(redact("amqp://host/vh"), "amqp://host/vh");
    }
}
