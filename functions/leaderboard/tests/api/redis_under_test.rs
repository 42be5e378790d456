//! The Redis a read test runs against — one standalone `redis-server`, or a real 3-master Redis Cluster
//! reached with `REDIS_CLUSTER=true` — with an inspection connection to either (independent of the code
//! under test) and where each partition's slot lives.

use std::collections::BTreeSet;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_testkit::{RedisCluster, RedisServer};

/// Masters of the test cluster.
const MASTERS: usize = 3;

/// Which Redis a parametrised test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Standalone,
    Cluster,
}

/// Runs each named `async fn(Target)` once per target, as the tests `<name>::standalone` and
/// `<name>::cluster`.
macro_rules! on_standalone_and_cluster {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn standalone() {
                super::$name($crate::redis_under_test::Target::Standalone).await;
            }

            #[tokio::test]
            async fn cluster() {
                super::$name($crate::redis_under_test::Target::Cluster).await;
            }
        }
    )*};
}
pub(crate) use on_standalone_and_cluster;

/// A running standalone server or cluster, stopped when dropped.
pub enum TestRedis {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl TestRedis {
    /// Starts the Redis `target` names (a cluster is ready once every node reports `cluster_state:ok`).
    pub fn start(target: Target) -> Self {
        match target {
            Target::Standalone => Self::Standalone(RedisServer::start()),
            Target::Cluster => Self::Cluster(RedisCluster::start(MASTERS)),
        }
    }

    /// `REDIS_URL` (the seed nodes on a cluster) and `REDIS_CLUSTER`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Standalone(server) => vec![("REDIS_URL", server.url())],
            Self::Cluster(cluster) => vec![
                ("REDIS_URL", cluster.url()),
                ("REDIS_CLUSTER", "true".to_owned()),
            ],
        }
    }

    /// The standalone server (for outage tests).
    ///
    /// # Panics
    /// On a cluster.
    pub fn standalone_mut(&mut self) -> &mut RedisServer {
        match self {
            Self::Standalone(server) => server,
            Self::Cluster(_) => panic!("a standalone-only test runs on standalone Redis"),
        }
    }

    /// The port of the master holding partition `p`'s slot (the one server on standalone Redis).
    pub fn master_of_partition(&self, p: u16) -> u16 {
        match self {
            Self::Standalone(server) => server.port(),
            Self::Cluster(cluster) => {
                cluster.master_of_slot(cluster.key_slot(&PartitionKeys::new(p).leaderboard()))
            }
        }
    }

    /// Asserts that the partitions of `users` live on every master.
    pub fn assert_on_every_master<'a>(
        &self,
        partitioner: Partitioner,
        users: impl IntoIterator<Item = &'a str>,
    ) {
        let used: BTreeSet<u16> = users
            .into_iter()
            .map(|user| self.master_of_partition(partitioner.partition_of(user)))
            .collect();
        let all: BTreeSet<u16> = match self {
            Self::Standalone(server) => [server.port()].into(),
            Self::Cluster(cluster) => cluster.master_ports().into_iter().collect(),
        };
        assert_eq!(used, all, "the users' partitions live on every master");
    }

    /// `FLUSHALL` on every master.
    pub fn flush_all(&self) {
        let ports = match self {
            Self::Standalone(server) => vec![server.port()],
            Self::Cluster(cluster) => cluster.master_ports(),
        };
        for port in ports {
            let () = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|client| client.get_connection())
                .and_then(|mut connection| redis::cmd("FLUSHALL").query(&mut connection))
                .unwrap_or_else(|e| panic!("FLUSHALL on {port}: {e}"));
        }
    }

    /// An inspection connection: multiplexed on standalone Redis, the test kit's cluster connection on a
    /// cluster.
    pub async fn connection(&self) -> TestConn {
        match self {
            Self::Standalone(server) => TestConn::Standalone(server.connection().await),
            Self::Cluster(cluster) => TestConn::Cluster(cluster.connection().await),
        }
    }
}

/// A connection for inspection and seeding, to either kind of Redis.
#[derive(Clone)]
pub enum TestConn {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for TestConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}
