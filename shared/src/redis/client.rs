//! Building Redis connections, standalone or Redis Cluster (`REDIS_CLUSTER`), from one constructor with
//! the same connect and response timeouts and TLS (`rediss://`, `REDIS_CA_CERT_FILE`) in both modes.
//! Connections are lazy (a Redis that is down at start-up does not stop a Lambda from initialising) and
//! reconnect by themselves; [`RedisConn`] is the one connection type every component issues commands on.

use std::sync::Arc;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr,
};
use redis::{Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, RedisFuture, Value};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::config::RedisConfig;

/// A standalone client for `config` (`protocol` RESP2 for commands, RESP3 for push-based Pub/Sub):
/// trusts `REDIS_CA_CERT_FILE` instead of the public roots when it is set.
///
/// # Errors
/// When the URL cannot be parsed (already checked by [`RedisConfig::from_env`]).
pub fn standalone_client(
    config: &RedisConfig,
    protocol: ProtocolVersion,
) -> redis::RedisResult<redis::Client> {
    crate::tls::install_crypto_provider();
    let info = config.url.expose_secret().into_connection_info()?;
    let settings = info.redis_settings().clone().set_protocol(protocol);
    let info = info.set_redis_settings(settings);
    match &config.ca_cert_pem {
        None => redis::Client::open(info),
        Some(pem) => redis::Client::build_with_tls(info, certificates(pem)),
    }
}

/// A cluster client over the comma-separated seed nodes of `REDIS_URL`, with the configured timeouts
/// (the cluster client has no response timeout by default) and TLS roots.
///
/// # Errors
/// When a seed URL cannot be parsed (already checked by [`RedisConfig::from_env`]).
pub fn cluster_client(
    config: &RedisConfig,
    protocol: ProtocolVersion,
    push_sender: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> redis::RedisResult<ClusterClient> {
    crate::tls::install_crypto_provider();
    let seeds: Vec<String> = config
        .url
        .expose_secret()
        .split(',')
        .map(|seed| seed.trim().to_owned())
        .collect();
    let mut builder = ClusterClientBuilder::new(seeds)
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.response_timeout)
        // Retries follow MOVED/ASK and reconnects; the overall bound keeps a slot move from turning one
        // command into an unbounded wait.
        .overall_response_timeout(Some(config.response_timeout * 3))
        .retries(4)
        .use_protocol(protocol);
    if let Some(pem) = &config.ca_cert_pem {
        builder = builder.certs(certificates(pem));
    }
    if let Some(sender) = push_sender {
        builder = builder.push_sender(sender);
    }
    builder.build()
}

fn certificates(pem: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    }
}

/// Opens a lazily connecting, self-reconnecting connection: a [`ConnectionManager`] on standalone Redis,
/// a cluster connection (routing each command by its key's slot, following `MOVED`/`ASK`) on a cluster.
/// Every call opens a new connection, so a task that blocks (`XREAD BLOCK`) takes its own.
///
/// # Errors
/// When the URL cannot be parsed (already checked by [`RedisConfig::from_env`]).
pub fn connect_lazy(config: &RedisConfig) -> redis::RedisResult<RedisConn> {
    if config.cluster {
        let client = cluster_client(config, ProtocolVersion::RESP2, None)?;
        return Ok(RedisConn::Cluster(LazyCluster {
            client: Arc::new(client),
            connection: Arc::new(OnceCell::new()),
        }));
    }
    let client = standalone_client(config, ProtocolVersion::RESP2)?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(std::time::Duration::from_millis(200));
    Ok(RedisConn::Standalone(
        ConnectionManager::new_lazy_with_config(client, manager_config)?,
    ))
}

/// A connection to standalone Redis or to a cluster; clones share it.
#[derive(Clone)]
pub enum RedisConn {
    Standalone(ConnectionManager),
    Cluster(LazyCluster),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standalone(_) => "RedisConn::Standalone",
            Self::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl RedisConn {
    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs a command that names no key on the node that holds `key` (`WAIT` is per shard on a cluster);
    /// on standalone Redis simply runs it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn query_at_key<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        command: &Cmd,
    ) -> redis::RedisResult<T> {
        match self {
            Self::Standalone(manager) => command.query_async(manager).await,
            Self::Cluster(lazy) => {
                let route = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let value = lazy
                    .get()
                    .await?
                    .route_command(
                        command.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                T::from_redis_value(value).map_err(redis::RedisError::from)
            }
        }
    }

    /// Runs a command on every master (one answer each; standalone Redis is one master).
    ///
    /// # Errors
    /// When Redis fails on any master.
    pub async fn query_every_master<T: redis::FromRedisValue>(
        &mut self,
        command: &Cmd,
    ) -> redis::RedisResult<Vec<T>> {
        match self {
            Self::Standalone(manager) => Ok(vec![command.query_async(manager).await?]),
            Self::Cluster(lazy) => {
                let value = lazy
                    .get()
                    .await?
                    .route_command(
                        command.clone(),
                        RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
                    )
                    .await?;
                let answers = match value {
                    Value::Map(pairs) => pairs.into_iter().map(|(_, answer)| answer).collect(),
                    other => vec![other],
                };
                answers
                    .into_iter()
                    .map(|answer| T::from_redis_value(answer).map_err(redis::RedisError::from))
                    .collect()
            }
        }
    }

    /// The command scripts publish with: `SPUBLISH` (sharded, stays on the channel's shard) on a cluster,
    /// `PUBLISH` on standalone Redis (`docs/design.md` §4).
    pub fn publish_command(&self) -> &'static str {
        publish_command(self.is_cluster())
    }
}

/// `SPUBLISH` on a cluster, `PUBLISH` on standalone Redis.
pub fn publish_command(cluster: bool) -> &'static str {
    if cluster { "SPUBLISH" } else { "PUBLISH" }
}

/// A cluster connection opened on first use; a failed open is retried by the next command.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // the redis connection types are not Debug
pub struct LazyCluster {
    client: Arc<ClusterClient>,
    connection: Arc<OnceCell<ClusterConnection>>,
}

impl LazyCluster {
    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(manager) => manager.req_packed_command(cmd),
            Self::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                connection.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(manager) => manager.req_packed_commands(pipeline, offset, count),
            Self::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}
