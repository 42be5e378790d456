//! One Pub/Sub subscription to a fixed set of channels over RESP3 pushes: `SUBSCRIBE` on standalone
//! Redis, `SSUBSCRIBE` per channel on a cluster (sharded Pub/Sub, `docs/design.md` §6).
//!
//! Anything that ends the subscription is reported as [`Notice::Lost`]: the connection closing, or the
//! server's unsolicited `unsubscribe`/`sunsubscribe` push (on a cluster, when the channel's slot moves to
//! another node; the client does not resubscribe by itself). The caller then opens a new subscription and
//! re-reads the state the channel announces, so nothing published meanwhile is missed for good.

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::client::{cluster_client, standalone_client};
use crate::config::RedisConfig;

/// What the subscription delivers next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A message published on one of the channels.
    Message { channel: String, payload: Vec<u8> },
    /// The subscription ended (why); open a new one.
    Lost(&'static str),
}

/// An open subscription.
#[allow(missing_debug_implementations)] // the redis connection types are not Debug
pub struct Subscription {
    connection: Connection,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
    channels: Vec<String>,
}

#[derive(Clone)]
enum Connection {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Subscription {
    /// Connects and subscribes to every channel, each bounded by the configured timeouts.
    ///
    /// # Errors
    /// When Redis cannot be reached or refuses a subscription.
    pub async fn open(config: &RedisConfig, channels: Vec<String>) -> redis::RedisResult<Self> {
        let (sender, pushes) = mpsc::unbounded_channel();
        let connection = if config.cluster {
            let client = cluster_client(config, ProtocolVersion::RESP3, Some(sender))?;
            let mut connection = client.get_async_connection().await?;
            // A sharded subscription names channels of one slot; each partition's channel has its own.
            for channel in &channels {
                connection.ssubscribe(channel).await?;
            }
            Connection::Cluster(connection)
        } else {
            let client = standalone_client(config, ProtocolVersion::RESP3)?;
            let connection_config = AsyncConnectionConfig::new()
                .set_push_sender(sender)
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout));
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&connection_config)
                .await?;
            connection.subscribe(&channels).await?;
            Connection::Standalone(connection)
        };
        Ok(Self {
            connection,
            pushes,
            channels,
        })
    }

    /// The next message, or why the subscription ended.
    pub async fn next(&mut self) -> Notice {
        loop {
            let Some(push) = self.pushes.recv().await else {
                return Notice::Lost("the connection closed");
            };
            if let Some(notice) = notice(push) {
                return notice;
            }
        }
    }

    /// A handle that checks the subscription's connection answers, while [`Self::next`] keeps reading.
    pub fn pinger(&self) -> Pinger {
        Pinger {
            connection: self.connection.clone(),
            channel: self.channels.first().cloned().unwrap_or_default(),
        }
    }
}

/// What a push means to the subscriber; `None` for confirmations and anything else to skip.
fn notice(push: PushInfo) -> Option<Notice> {
    match push.kind {
        PushKind::Message | PushKind::SMessage => {
            let mut data = push.data.into_iter();
            let channel = match data.next() {
                Some(Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => return None,
            };
            match data.next() {
                Some(Value::BulkString(payload)) => Some(Notice::Message { channel, payload }),
                _ => None,
            }
        }
        PushKind::Disconnection => Some(Notice::Lost("the connection closed")),
        PushKind::Unsubscribe | PushKind::SUnsubscribe => Some(Notice::Lost(
            "the server ended the subscription (a slot moved)",
        )),
        _ => None,
    }
}

/// Pings over the subscription's connection: `PING` on standalone Redis; on a cluster an `EXISTS` of the
/// first channel's name, which routes to the node that holds the subscription.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // the redis connection types are not Debug
pub struct Pinger {
    connection: Connection,
    channel: String,
}

impl Pinger {
    /// One round trip.
    ///
    /// # Errors
    /// When the connection fails or times out.
    pub async fn ping(&mut self) -> redis::RedisResult<()> {
        match &mut self.connection {
            Connection::Standalone(connection) => {
                redis::cmd("PING").query_async::<Value>(connection).await?;
            }
            Connection::Cluster(connection) => {
                redis::cmd("EXISTS")
                    .arg(&self.channel)
                    .query_async::<Value>(connection)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind, data: Vec<Value>) -> PushInfo {
        PushInfo { kind, data }
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn messages_of_both_kinds_carry_channel_and_payload() {
        for kind in [PushKind::Message, PushKind::SMessage] {
            assert_eq!(
                notice(push(kind, vec![bulk("{sb}:events"), bulk("{}")])),
                Some(Notice::Message {
                    channel: "{sb}:events".into(),
                    payload: b"{}".to_vec()
                })
            );
        }
    }

    #[test]
    fn a_server_unsubscribe_or_a_disconnection_ends_the_subscription() {
        for kind in [
            PushKind::SUnsubscribe,
            PushKind::Unsubscribe,
            PushKind::Disconnection,
        ] {
            assert!(matches!(
                notice(push(kind, vec![bulk("{sb:3}:changed")])),
                Some(Notice::Lost(_))
            ));
        }
    }

    #[test]
    fn confirmations_and_malformed_pushes_are_skipped() {
        assert_eq!(
            notice(push(PushKind::SSubscribe, vec![bulk("c"), Value::Int(1)])),
            None
        );
        assert_eq!(notice(push(PushKind::Message, vec![bulk("c")])), None);
        assert_eq!(
            notice(push(PushKind::Message, vec![Value::Int(1), bulk("x")])),
            None
        );
    }
}
