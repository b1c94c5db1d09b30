//! Confirmed publishing: results, dead letters and jobs.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};

use super::{QueueError, ATTEMPTS_HEADER, ERROR_HEADER};
use crate::result::ResultMessage;

/// Persistent delivery mode.
pub(crate) const PERSISTENT: u8 = 2;

/// How long a publish may wait for the broker's confirm. A connection lost
/// between the publish and its confirm must not hold the job's slot forever;
/// an unconfirmed result is treated as not sent (the job is redelivered).
pub(crate) const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Publish and wait for the broker's confirm (the channel must be in
/// confirm mode), at most [`CONFIRM_TIMEOUT`].
pub async fn confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), QueueError> {
    let publish = async {
        ch.basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await?
        .await
    };
    let confirm = tokio::time::timeout(CONFIRM_TIMEOUT, publish)
        .await
        .map_err(|_| QueueError::Unconfirmed(CONFIRM_TIMEOUT))??;
    if confirm.is_nack() {
        return Err(QueueError::Nacked);
    }
    Ok(())
}

/// Publish a job's audit events to the audit exchange, persistent and
/// mandatory, one message per access (`message_id` `{job id}.{n}`), all
/// published before their confirms are awaited; `Ok` once the broker
/// confirmed every one as routed to a queue.
pub async fn audit_events(
    ch: &Channel,
    audit_exchange: &str,
    events: &[crate::audit::AuditEvent],
) -> Result<(), QueueError> {
    // Mandatory: an event no queue takes (the audit queue unbound or
    // deleted) comes back instead of being dropped, and counts as refused.
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let mut pending = Vec::with_capacity(events.len());
    for (n, event) in events.iter().enumerate() {
        let body = serde_json::to_vec(event)?;
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(format!("{}.{n}", event.job_id).into());
        pending.push(
            ch.basic_publish(audit_exchange.into(), "".into(), options, &body, props)
                .await?,
        );
    }
    let confirms = async {
        for p in pending {
            routed(p.await?)?;
        }
        Ok(())
    };
    tokio::time::timeout(CONFIRM_TIMEOUT, confirms)
        .await
        .map_err(|_| QueueError::Unconfirmed(CONFIRM_TIMEOUT))?
}

/// Publish a result to the results exchange (`{type}.{status}`) and, when
/// the job asked for one, to its `reply_to` queue with its `correlation_id`.
pub async fn result(
    ch: &Channel,
    results_exchange: &str,
    result: &ResultMessage,
    reply_to: Option<&ShortString>,
    correlation_id: Option<&ShortString>,
) -> Result<(), QueueError> {
    let body = serde_json::to_vec(result)?;
    let key = result.routing_key();
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(PERSISTENT)
        .with_type(key.as_str().into());
    if !result.id.is_empty() {
        props = props.with_message_id(result.id.as_str().into());
    }
    if let Some(c) = correlation_id {
        props = props.with_correlation_id(c.clone());
    }
    confirmed(ch, results_exchange, &key, &body, props.clone()).await?;
    if let Some(reply_to) = reply_to.filter(|r| !r.as_str().is_empty()) {
        confirmed(ch, "", reply_to.as_str(), &body, props).await?;
    }
    Ok(())
}

/// Re-publish a job to the dead-letter exchange with the error code in a
/// header (a reject cannot add headers). The original properties and
/// headers are kept.
pub(crate) async fn dead_letter(
    ch: &Channel,
    dlx: &str,
    body: &[u8],
    props: &BasicProperties,
    code: &str,
    attempts: u32,
) -> Result<(), QueueError> {
    let props = republished(props, attempts, Some(code));
    confirmed(ch, dlx, "", body, props).await
}

/// A job's properties for publishing it again, persistent, with the
/// attempts made so far in [`ATTEMPTS_HEADER`] and the error code, if any,
/// in [`ERROR_HEADER`]; the original properties and headers are kept.
fn republished(props: &BasicProperties, attempts: u32, code: Option<&str>) -> BasicProperties {
    let mut headers = props.headers().clone().unwrap_or_default();
    if let Some(code) = code {
        headers.insert(ERROR_HEADER.into(), AMQPValue::LongString(code.into()));
    }
    headers.insert(
        ATTEMPTS_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempts)),
    );
    props
        .clone()
        .with_headers(headers)
        .with_delivery_mode(PERSISTENT)
}

/// Put a job whose attempt failed transiently into the retry queue, to
/// return to the jobs queue once `pause` (its TTL there) is over: the body,
/// properties and headers are kept, the attempts made so far travel in
/// [`ATTEMPTS_HEADER`]. Mandatory: a missing retry queue is an error, not
/// a lost job. `Ok` once the broker confirmed it as routed.
pub(crate) async fn retry(
    ch: &Channel,
    retry_queue: &str,
    body: &[u8],
    props: &BasicProperties,
    attempts: u32,
    pause: Duration,
) -> Result<(), QueueError> {
    let props = republished(props, attempts, None)
        .with_expiration(pause.as_millis().max(1).to_string().into());
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let publish = async {
        ch.basic_publish("".into(), retry_queue.into(), options, body, props)
            .await?
            .await
    };
    routed(
        tokio::time::timeout(CONFIRM_TIMEOUT, publish)
            .await
            .map_err(|_| QueueError::Unconfirmed(CONFIRM_TIMEOUT))??,
    )
}

/// A mandatory publish's confirm: `Ok` when the broker acked it as routed
/// to a queue; [`QueueError::Returned`] when no queue took it,
/// [`QueueError::Nacked`] when the broker refused it.
fn routed(confirmation: lapin::Confirmation) -> Result<(), QueueError> {
    match confirmation {
        lapin::Confirmation::Ack(None) => Ok(()),
        lapin::Confirmation::Ack(Some(_)) => Err(QueueError::Returned),
        _ => Err(QueueError::Nacked),
    }
}

/// A header's raw bytes, when it is a long string, a short string or a byte
/// array (what Python's pika sends for `bytes` values).
pub(crate) fn header_bytes<'a>(headers: Option<&'a FieldTable>, name: &str) -> Option<&'a [u8]> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        AMQPValue::ByteArray(b) => Some(b.as_slice()),
        _ => None,
    }
}

/// A header's value as a string, when it is a long string, a short string
/// or a byte array (invalid UTF-8 replaced).
pub fn header_str(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    header_bytes(headers, name).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A header's value as an integer, when it is one.
pub fn header_int(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    match headers?.inner().get(name)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        _ => None,
    }
}
