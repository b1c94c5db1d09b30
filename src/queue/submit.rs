//! `imgworker submit`: publish jobs with publisher confirms and, with
//! `--wait`, collect their results from an exclusive reply queue.

use std::collections::HashSet;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ConnectionProperties};

use super::publish::{confirmed, PERSISTENT};
use super::signing::{KEY_ID_HEADER, SIGNATURE_HEADER};
use super::{BrokerEndpoint, QueueError, SigningKeys, Topology};
use crate::job::identify;
use crate::result::ResultMessage;

/// Settings of `imgworker submit`.
#[derive(Debug, Clone)]
pub struct SubmitConfig {
    /// The broker.
    pub broker: BrokerEndpoint,
    /// Where jobs go.
    pub topology: Topology,
    /// Sign with the first key when set.
    pub signing: SigningKeys,
    /// Wait for results this long (None: do not wait).
    pub wait: Option<Duration>,
}

/// Publish `jobs` (raw bodies); with `wait`, return their results in the
/// order they arrive.
pub async fn submit(
    cfg: &SubmitConfig,
    jobs: &[Vec<u8>],
) -> Result<Vec<ResultMessage>, QueueError> {
    let conn = cfg.broker.connect(ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    cfg.topology.declare(&ch).await?;
    let mut replies = None;
    if cfg.wait.is_some() {
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let consumer = ch
            .basic_consume(
                q.name().clone(),
                "imgworker-submit".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        replies = Some((q.name().clone(), consumer));
    }
    let mut pending = HashSet::new();
    for body in jobs {
        let ident = identify(body);
        let id = ident.id.unwrap_or_default();
        let mut props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(id.as_str().into());
        if let Some(key) = cfg.signing.first_id() {
            let sig = cfg.signing.sign(key, body).expect("the key exists");
            let mut headers = FieldTable::default();
            headers.insert(KEY_ID_HEADER.into(), AMQPValue::LongString(key.into()));
            headers.insert(
                SIGNATURE_HEADER.into(),
                AMQPValue::LongString(sig.as_str().into()),
            );
            props = props.with_headers(headers);
        }
        if let Some((name, _)) = &replies {
            props = props
                .with_reply_to(name.clone())
                .with_correlation_id(id.as_str().into());
        }
        confirmed(&ch, "", &cfg.topology.jobs_queue, body, props).await?;
        tracing::info!(job_id = %id, "submitted");
        pending.insert(id);
    }
    let mut results = Vec::new();
    if let (Some(wait), Some((_, mut consumer))) = (cfg.wait, replies) {
        let deadline = tokio::time::Instant::now() + wait;
        while !pending.is_empty() {
            let next = tokio::time::timeout_at(deadline, consumer.next())
                .await
                .map_err(|_| QueueError::Timeout(pending.len()))?;
            let Some(delivery) = next else { break };
            let delivery = delivery?;
            delivery.acker.ack(BasicAckOptions::default()).await?;
            let corr = delivery
                .properties
                .correlation_id()
                .as_ref()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default();
            if !pending.remove(&corr) {
                continue;
            }
            match serde_json::from_slice::<ResultMessage>(&delivery.data) {
                Ok(r) => results.push(r),
                Err(e) => tracing::warn!(error = %e, "unreadable result"),
            }
        }
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(results)
}
