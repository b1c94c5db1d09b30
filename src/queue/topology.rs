//! The broker topology, declared idempotently at start-up.
//!
//! - `imgworker.jobs`: a durable quorum queue with an explicit
//!   `x-delivery-limit` (RabbitMQ 3.10 has no default), dead-lettering to
//! - `imgworker.dlx`: a fanout exchange feeding the queue `imgworker.dead`;
//! - `imgworker.results`: a topic exchange; results are routed by
//!   `{type}.{status}` (for example `edit.succeeded`, `purge.failed`);
//! - `imgworker.audit`: a fanout exchange feeding the durable quorum queue
//!   `imgworker.audit`, the audit trail (one message per storage access);
//! - `imgworker.retry`: a durable quorum queue without consumers where a
//!   job whose attempt failed transiently waits out its backoff (the
//!   message's own TTL, `expiration`), then is dead-lettered, at least
//!   once, back to the jobs queue through the default exchange.
//!
//! The same topology ships as RabbitMQ definitions in
//! `deploy/rabbitmq/definitions.json`.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

/// The arguments of a durable quorum queue.
fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// Names and limits of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The jobs queue.
    pub jobs_queue: String,
    /// The dead-letter exchange.
    pub dead_letter_exchange: String,
    /// The queue bound to the dead-letter exchange.
    pub dead_queue: String,
    /// The topic exchange results are published to.
    pub results_exchange: String,
    /// The fanout exchange audit events are published to.
    pub audit_exchange: String,
    /// The durable quorum queue that keeps them.
    pub audit_queue: String,
    /// The queue transient failures wait in before they return to the jobs
    /// queue.
    pub retry_queue: String,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: u32,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            jobs_queue: "imgworker.jobs".into(),
            dead_letter_exchange: "imgworker.dlx".into(),
            dead_queue: "imgworker.dead".into(),
            results_exchange: "imgworker.results".into(),
            audit_exchange: "imgworker.audit".into(),
            audit_queue: "imgworker.audit".into(),
            retry_queue: "imgworker.retry".into(),
            delivery_limit: 5,
        }
    }
}

impl Topology {
    /// The jobs queue's arguments.
    pub(crate) fn jobs_arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.delivery_limit)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange.as_str().into()),
        );
        args
    }

    /// The retry queue's arguments: expired messages go back to the jobs
    /// queue through the default exchange. At-least-once dead-lettering
    /// (a message leaves only once the jobs queue has it) needs the queue
    /// to refuse publishes when full rather than drop its oldest.
    pub(crate) fn retry_arguments(&self) -> FieldTable {
        let mut args = quorum();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.jobs_queue.as_str().into()),
        );
        args.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        args
    }

    /// Declare everything (a no-op when it already exists as declared).
    pub async fn declare(&self, ch: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(
            self.dead_letter_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
        ch.exchange_declare(
            self.results_exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            self.dead_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum(),
        )
        .await?;
        ch.queue_bind(
            self.dead_queue.as_str().into(),
            self.dead_letter_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            self.jobs_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            self.jobs_arguments(),
        )
        .await?;
        ch.queue_declare(
            self.retry_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            self.retry_arguments(),
        )
        .await?;
        ch.exchange_declare(
            self.audit_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            self.audit_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum(),
        )
        .await?;
        ch.queue_bind(
            self.audit_queue.as_str().into(),
            self.audit_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        Ok(())
    }
}
