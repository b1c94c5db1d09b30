//! `imgworker serve`: consume jobs until told to stop, then drain.
//!
//! One session is one connection with two channels: a consumer channel
//! (manual acks, prefetch = twice the concurrency) and a publisher channel
//! in confirm mode. Each delivery runs in its own task (a panic fails the
//! job, not the worker), its pixel work on the blocking pool, so decode,
//! GPU/CPU work and encode of different jobs overlap. A job holds one of
//! the `concurrency` slots while it runs and gives it up before its audit
//! events and result wait for the broker's confirms, so the next job runs
//! meanwhile: the prefetch covers both, a job running and one settling per
//! slot. A transient failure is parked in
//! the retry queue for its backoff and acked, so its slot is free at once
//! for the next job. When the connection dies, a new
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

use super::publish::{self, header_int};
use super::{BrokerEndpoint, QueueError, SigningKeys, Topology};
use crate::audit::AuditEvent;
use crate::backend::BackendKind;
use crate::error::{with_cause, Disposition, ErrorCode, JobError};
use crate::job::{identify, Identity};
use crate::metrics::Metrics;
use crate::pipeline::Engine;
use crate::result::ResultMessage;

/// Settings of `imgworker serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The broker: `amqp://` or `amqps://` URLs, one per node (vhost in
    /// the path, `?heartbeat=` honoured), and TLS files.
    pub broker: BrokerEndpoint,
    /// Queue and exchange names, delivery limit.
    pub topology: Topology,
    /// Jobs processed at once; the prefetch is twice this (a job running
    /// and one waiting for its confirms, per slot).
    pub concurrency: usize,
    /// How long a drain waits for jobs in flight.
    pub grace: Duration,
    /// Keys jobs must be signed with (empty: signing off).
    pub signing: SigningKeys,
    /// First retry delay of a transient failure (doubles per attempt, at most 30 s).
    pub(crate) retry_backoff: Duration,
    /// Longest wait between reconnection attempts.
    pub(crate) reconnect_max: Duration,
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
pub(crate) fn redact(url: &str) -> String {
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
    /// Jobs running (`concurrency`): taken before a delivery is taken,
    /// given back when the job's work is done.
    slots: Arc<Semaphore>,
    /// Deliveries held, from taking one to its ack or nack ([`prefetch`]).
    held: Arc<Semaphore>,
}

/// Unacked deliveries a session holds at most: a job running and one
/// settling (waiting for its confirms and ack) per slot.
fn prefetch(concurrency: usize) -> u16 {
    u16::try_from(concurrency.saturating_mul(2)).unwrap_or(u16::MAX)
}

/// How long closing a session at shutdown may wait for the broker.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A live session's connection and channels, held through a drain.
struct Session {
    conn: Connection,
    /// Results and dead letters, in confirm mode.
    publisher: Channel,
    /// Deliveries, acks and nacks.
    consumer_ch: Channel,
    /// The (cancelled) consumer: dropped only after its channel is closed.
    consumer: lapin::Consumer,
}

impl Session {
    /// Cancel the consumer `tag` (waiting for the broker's cancel-ok) and
    /// keep the session open for the drain.
    async fn stop_consuming(self, tag: &str) -> SessionEnd {
        if let Err(e) = self
            .consumer_ch
            .basic_cancel(tag.into(), BasicCancelOptions::default())
            .await
        {
            debug!(error = %e, "cancelling the consumer failed");
        }
        SessionEnd::Drain(Box::new(self))
    }

    /// Close the channels, then the connection, each waiting for the
    /// broker's close-ok. Closing the consumer channel hands any
    /// prefetched, unstarted job back to the queue. A channel left to close
    /// itself when its last handle drops would race the connection's close
    /// and make lapin log `invalid channel state: Closing` as an error.
    async fn close(self) {
        const BYE: u16 = 200;
        let Session {
            conn,
            publisher,
            consumer_ch,
            consumer,
        } = self;
        for (what, ch) in [("consumer", &consumer_ch), ("publisher", &publisher)] {
            if let Err(e) = ch.close(BYE, "worker shutting down".into()).await {
                debug!(channel = what, error = %e, "closing a channel failed");
            }
        }
        drop(consumer);
        if let Err(e) = conn.close(BYE, "worker shutting down".into()).await {
            debug!(error = %e, "closing the connection failed");
        }
    }
}

enum SessionEnd {
    /// Shutdown requested; consumption was cancelled. The session stays
    /// open so that jobs in flight can publish and ack.
    Drain(Box<Session>),
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
        held: Arc::new(Semaphore::new(usize::from(prefetch(cfg.concurrency)))),
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
            Ok(SessionEnd::Drain(held)) => return drain(&shared, Some(*held)).await,
            Ok(SessionEnd::Lost(why)) => {
                shared.metrics.set_ready(false);
                shared.metrics.set_broker_node(None);
                warn!(reason = %why, "lost the broker; reconnecting");
                sessions += 1;
                backoff = Duration::from_millis(100);
            }
            Err(e @ QueueError::Tls(_)) => {
                shared.metrics.set_ready(false);
                error!(error = %with_cause(&e), "cannot connect to the broker securely; stopping");
                return Err(e);
            }
            Err(e) => {
                shared.metrics.set_ready(false);
                warn!(error = %with_cause(&e), retry_in_ms = backoff.as_millis() as u64, "cannot reach the broker");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => {}
        }
        backoff = (backoff * 2).min(shared.cfg.reconnect_max);
    }
}

/// Wait (at most the grace period) for the jobs in flight, then close the
/// session, if there is one.
async fn drain(shared: &Shared, session: Option<Session>) -> Result<(), QueueError> {
    shared.metrics.set_ready(false);
    let n = prefetch(shared.cfg.concurrency);
    info!(
        in_flight = usize::from(n) - shared.held.available_permits(),
        grace_s = shared.cfg.grace.as_secs_f64(),
        "draining"
    );
    let settled = shared.held.acquire_many(u32::from(n));
    match tokio::time::timeout(shared.cfg.grace, settled).await {
        Ok(_) => info!("every job in flight finished"),
        Err(_) => warn!("grace period over; unfinished jobs will be redelivered"),
    }
    if let Some(session) = session {
        // A broker that stopped answering must not hold the exit.
        if tokio::time::timeout(CLOSE_TIMEOUT, session.close())
            .await
            .is_err()
        {
            warn!(
                timeout_s = CLOSE_TIMEOUT.as_secs(),
                "the broker did not confirm the close; exiting anyway"
            );
        }
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
    let super::tls::Connected {
        connection: conn,
        node,
    } = cfg.broker.connect_any(props).await?;
    let publisher = conn.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    cfg.topology.declare(&publisher).await?;
    let consumer_ch = conn.create_channel().await?;
    consumer_ch
        .basic_qos(prefetch(cfg.concurrency), BasicQosOptions::default())
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
    shared.metrics.set_broker_node(Some(&node));
    info!(%node, queue = %cfg.topology.jobs_queue, concurrency = cfg.concurrency, "consuming");
    // Jobs in flight can hold every slot while the connection dies under
    // them; watching the connection itself ends the session even then.
    let mut events = conn.events_listener();
    loop {
        // Take a slot first, so no more than `concurrency` jobs run (and no
        // more deliveries are held than the prefetch).
        let permits = async {
            let held = shared.held.clone().acquire_owned().await;
            let slot = shared.slots.clone().acquire_owned().await;
            (
                held.expect("semaphore never closed"),
                slot.expect("semaphore never closed"),
            )
        };
        let (held, slot) = tokio::select! {
            p = permits => p,
            why = connection_lost(&conn, &mut events) => return Ok(SessionEnd::Lost(why)),
            _ = shutdown.changed() => {
                let session = Session { conn, publisher, consumer_ch, consumer };
                return Ok(session.stop_consuming(&tag).await);
            }
        };
        let next = tokio::select! {
            d = consumer.next() => d,
            why = connection_lost(&conn, &mut events) => return Ok(SessionEnd::Lost(why)),
            _ = shutdown.changed() => {
                let session = Session { conn, publisher, consumer_ch, consumer };
                return Ok(session.stop_consuming(&tag).await);
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
            handle(&shared, &publisher, delivery, slot).await;
            shared.metrics.in_flight.dec();
            drop(held);
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

/// Run one delivery's job, give its `slot` back, then publish what it
/// calls for and settle the delivery.
async fn handle(
    shared: &Shared,
    publisher: &Channel,
    delivery: Delivery,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let headers = delivery.properties.headers().as_ref();
    let attempt = attempt_of(headers, delivery.redelivered);
    let ident = identify(&delivery.data);
    let span = info_span!(
        "delivery",
        job_id = ident.id.as_deref().unwrap_or(""),
        attempt
    );
    async {
        let cfg = &shared.cfg;
        // Signature first: an unsigned job never reaches storage.
        let refused = if cfg.signing.enabled() {
            cfg.signing
                .verify_headers(headers, &delivery.data)
                .err()
                .map(|e| {
                    let err =
                        JobError::new(ErrorCode::InvalidSignature, e.to_string()).with_source(e);
                    shared.engine.failure(&ident, &err, attempt)
                })
        } else {
            None
        };
        let (result, fallback, audit) = match refused {
            Some(r) => (r, false, Vec::new()),
            None => run_isolated(shared, &delivery.data, attempt, &ident).await,
        };
        // The work is done: the next job runs while this one's publishes
        // wait for their confirms.
        drop(slot);
        let unsettled = match settle(shared, publisher, &delivery, &result, &audit, attempt).await {
            Ok(Disposition::Ack | Disposition::DeadLetter) => {
                shared.metrics.record(&result, fallback);
                let acked = delivery.acker.ack(BasicAckOptions::default()).await;
                debug!(status = result.status.as_str(), "acked");
                failure(acked, "ack")
            }
            Ok(Disposition::Retry) => {
                shared.metrics.retries.inc();
                let pause = retry_pause(cfg.retry_backoff, attempt);
                let parked = publish::retry(
                    publisher,
                    &cfg.topology.retry_queue,
                    &delivery.data,
                    &delivery.properties,
                    attempt,
                    pause,
                )
                .await;
                match parked {
                    // In the retry queue: the slot is free at once.
                    Ok(()) => failure(delivery.acker.ack(BasicAckOptions::default()).await, "ack"),
                    Err(e) => {
                        warn!(error = %with_cause(&e), "could not park the job in the retry queue; it goes back to the jobs queue after its pause");
                        tokio::time::sleep(pause).await;
                        failure(delivery.acker.nack(REQUEUE).await, "nack")
                    }
                }
            }
            Err(e) => {
                // Not settled (the broker did not confirm the audit events,
                // the result or the dead letter): give the job back, after
                // the same pause as a transient failure, so that a broker
                // refusing publishes for a while does not use up the job's
                // deliveries in a moment.
                warn!(error = %with_cause(&e), "could not publish; the job goes back to the queue");
                shared.metrics.retries.inc();
                tokio::time::sleep(retry_pause(cfg.retry_backoff, attempt)).await;
                failure(delivery.acker.nack(REQUEUE).await, "nack")
            }
        };
        let Some(outcome) = unsettled else { return };
        warn!(reason = %outcome, "delivery not settled; the broker will redeliver the job");
    }
    .instrument(span)
    .await
}

/// Which attempt (from 1) a delivery is: the attempts made before it went
/// through the retry queue ([`super::ATTEMPTS_HEADER`]), plus the
/// deliveries of this message the quorum queue counted (`x-delivery-count`,
/// a crashed or disconnected worker's), plus this one.
fn attempt_of(headers: Option<&FieldTable>, redelivered: bool) -> u32 {
    let earlier = |name| header_int(headers, name).map_or(0, |n| n.clamp(0, 1 << 20) as u32);
    let count = earlier("x-delivery-count").max(u32::from(redelivered));
    earlier(super::ATTEMPTS_HEADER) + count + 1
}

/// The pause before a job goes back to the queue on its `attempt`-th
/// delivery: `backoff` doubling per attempt, at most 30 s.
fn retry_pause(backoff: Duration, attempt: u32) -> Duration {
    backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(Duration::from_secs(30))
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

/// Run the job in its own task, so that a panic is a failed attempt:
/// its result, whether the GPU fell back to the CPU, and its audit events.
async fn run_isolated(
    shared: &Shared,
    body: &[u8],
    attempt: u32,
    ident: &Identity,
) -> (ResultMessage, bool, Vec<AuditEvent>) {
    let engine = shared.engine.clone();
    let body = body.to_vec();
    let job = tokio::spawn(async move { engine.run(&body, attempt).await });
    match job.await {
        Ok(outcome) => {
            // The GPU was configured but the pixels were made on the CPU.
            let fallback = shared.engine.backend_kind() == BackendKind::Gpu
                && outcome.stats.backend == Some(BackendKind::Cpu);
            (outcome.result, fallback, outcome.audit)
        }
        Err(e) => {
            // The accesses made before the panic were logged; their events
            // went with the task. The job is retried and makes them again.
            error!(error = %e, "the job's task panicked");
            let err = JobError::internal("the job's task failed unexpectedly").with_source(e);
            (
                shared.engine.failure(ident, &err, attempt),
                false,
                Vec::new(),
            )
        }
    }
}

/// Publish what the job's [`Disposition`] calls for: its audit events
/// (always, first: an access is recorded before the job can be acked), the
/// result (unless it is retried) and, for a failed job, the dead letter.
/// Returns the disposition once the broker confirmed every publish.
async fn settle(
    shared: &Shared,
    publisher: &Channel,
    delivery: &Delivery,
    result: &ResultMessage,
    audit: &[AuditEvent],
    attempt: u32,
) -> Result<Disposition, QueueError> {
    let topo = &shared.cfg.topology;
    publish::audit_events(publisher, &topo.audit_exchange, audit).await?;
    let props = &delivery.properties;
    let code = result.error_code();
    let disposition = Disposition::of(code, attempt, topo.delivery_limit);
    let code = code.map_or("", ErrorCode::as_str);
    match disposition {
        Disposition::Ack => {}
        Disposition::Retry => {
            warn!(code, "transient failure; retrying later");
            return Ok(disposition);
        }
        Disposition::DeadLetter => warn!(code, "job failed; dead-lettering it"),
    }
    publish::result(
        publisher,
        &topo.results_exchange,
        result,
        props.reply_to().as_ref(),
        props.correlation_id().as_ref(),
    )
    .await?;
    if disposition == Disposition::DeadLetter {
        publish::dead_letter(
            publisher,
            &topo.dead_letter_exchange,
            &delivery.data,
            props,
            code,
            attempt,
        )
        .await?;
        shared.metrics.dead_lettered.inc();
    }
    Ok(disposition)
}

#[cfg(test)]
mod tests {
    use super::{attempt_of, prefetch, redact, retry_pause};
    use lapin::types::{AMQPValue, FieldTable};
    use std::time::Duration;

    #[test]
    fn attempts_add_the_retry_header_and_the_delivery_count() {
        assert_eq!(attempt_of(None, false), 1);
        assert_eq!(attempt_of(None, true), 2, "a classic redelivery");
        let mut h = FieldTable::default();
        h.insert("x-delivery-count".into(), AMQPValue::LongLongInt(2));
        assert_eq!(attempt_of(Some(&h), true), 3);
        h.insert(
            super::super::ATTEMPTS_HEADER.into(),
            AMQPValue::LongLongInt(3),
        );
        assert_eq!(attempt_of(Some(&h), true), 6);
        h.insert("x-delivery-count".into(), AMQPValue::LongLongInt(-4));
        assert_eq!(attempt_of(Some(&h), false), 4, "nonsense counts as none");
    }

    #[test]
    fn the_prefetch_holds_a_running_and_a_settling_job_per_slot() {
        assert_eq!(prefetch(1), 2);
        assert_eq!(prefetch(16), 32);
        assert_eq!(prefetch(40_000), u16::MAX);
    }

    #[test]
    fn retry_pauses_double_up_to_thirty_seconds() {
        let b = Duration::from_millis(500);
        assert_eq!(retry_pause(b, 1), b);
        assert_eq!(retry_pause(b, 3), b * 4);
        assert_eq!(retry_pause(b, 40), Duration::from_secs(30));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("amqp://user:s3cret@host:5672/vh"),
            "amqp://user:***@host:5672/vh"
        );
        assert_eq!(redact("amqp://host/vh"), "amqp://host/vh");
    }
}
