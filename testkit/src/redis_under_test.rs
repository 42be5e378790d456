//! The Redis a function's contract test runs against — one standalone `redis-server`, or a real 3-master
//! Redis Cluster reached with `REDIS_CLUSTER=true` — and what the tests read from either: an inspection
//! connection independent of the code under test, each master's command statistics, users whose
//! partitions live on every master, and [`on_standalone_and_cluster!`](crate::on_standalone_and_cluster)
//! to run one test on both.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::{RedisCluster, RedisServer};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use scoreboard_shared::partition::Partitioner;
use scoreboard_shared::redis::keys::PartitionKeys;

/// Masters of the test cluster.
pub const MASTERS: usize = 3;

/// Which Redis a parametrised test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Standalone,
    Cluster,
}

/// Runs each named `async fn(Target)` once per target, as the tests `<name>::standalone` and
/// `<name>::cluster`.
#[macro_export]
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

/// A running standalone server or cluster, stopped when dropped.
#[derive(Debug)]
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

    /// The ports of the masters (the one server on standalone Redis).
    pub fn master_ports(&self) -> Vec<u16> {
        match self {
            Self::Standalone(server) => vec![server.port()],
            Self::Cluster(cluster) => cluster.master_ports(),
        }
    }

    /// The port of the master holding partition `p`'s slot.
    pub fn master_of_partition(&self, p: u16) -> u16 {
        match self {
            Self::Standalone(server) => server.port(),
            Self::Cluster(cluster) => {
                cluster.master_of_slot(cluster.key_slot(&PartitionKeys::new(p).updates()))
            }
        }
    }

    /// `users` grouped by the master holding their partition.
    pub fn users_by_master(
        &self,
        partitioner: Partitioner,
        users: &[String],
    ) -> BTreeMap<u16, Vec<String>> {
        let masters: HashMap<u16, u16> = partitioner
            .all()
            .map(|p| (p, self.master_of_partition(p)))
            .collect();
        let mut grouped: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        for user in users {
            grouped
                .entry(masters[&partitioner.partition_of(user)])
                .or_default()
                .push(user.clone());
        }
        grouped
    }

    /// `per_master * MASTERS` users named `<prefix><n>`: on a cluster `per_master` on each master (asserted),
    /// on standalone Redis simply the first ones.
    pub fn spread_users(
        &self,
        partitioner: Partitioner,
        prefix: &str,
        per_master: usize,
    ) -> Vec<String> {
        let masters: HashMap<u16, u16> = partitioner
            .all()
            .map(|p| (p, self.master_of_partition(p)))
            .collect();
        let wanted = match self {
            Self::Standalone(_) => per_master * MASTERS,
            Self::Cluster(_) => per_master,
        };
        let mut taken: HashMap<u16, usize> = HashMap::new();
        let mut users = Vec::new();
        for n in 0..10_000 {
            let user = format!("{prefix}{n}");
            let count = taken
                .entry(masters[&partitioner.partition_of(&user)])
                .or_default();
            if *count < wanted {
                *count += 1;
                users.push(user);
            }
            if users.len() == per_master * MASTERS {
                break;
            }
        }
        assert_eq!(users.len(), per_master * MASTERS, "not enough users found");
        self.assert_on_every_master(partitioner, &users);
        users
    }

    /// Asserts that `users`' partitions live on every master.
    pub fn assert_on_every_master<U: AsRef<str>>(
        &self,
        partitioner: Partitioner,
        users: impl IntoIterator<Item = U>,
    ) {
        let users: Vec<String> = users.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let used: BTreeSet<u16> = self
            .users_by_master(partitioner, &users)
            .into_keys()
            .collect();
        let all: BTreeSet<u16> = self.master_ports().into_iter().collect();
        assert_eq!(used, all, "the users' partitions live on every master");
    }

    /// `CONFIG RESETSTAT` on every master; returns their ports, for [`Self::command_stats`] (which must
    /// not look the masters up again: `CLUSTER SLOTS` would count).
    pub fn reset_stats(&self) -> Vec<u16> {
        let ports = self.master_ports();
        for port in &ports {
            let () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query(&mut node(*port))
                .expect("CONFIG RESETSTAT");
        }
        ports
    }

    /// `INFO commandstats` of the masters on `ports`: port → command → calls.
    pub fn command_stats(ports: &[u16]) -> BTreeMap<u16, HashMap<String, u64>> {
        ports
            .iter()
            .map(|&port| {
                let info: String = redis::cmd("INFO")
                    .arg("commandstats")
                    .query(&mut node(port))
                    .expect("INFO commandstats");
                (port, parse_command_stats(&info))
            })
            .collect()
    }

    /// `FLUSHALL` on every master.
    pub fn flush_all(&self) {
        for port in self.master_ports() {
            let () = redis::cmd("FLUSHALL")
                .query(&mut node(port))
                .unwrap_or_else(|e| panic!("FLUSHALL on {port}: {e}"));
        }
    }

    /// An inspection connection: multiplexed on standalone Redis, the test kit's cluster connection on a
    /// cluster.
    pub async fn inspect(&self) -> TestConn {
        match self {
            Self::Standalone(server) => TestConn::Standalone(server.connection().await),
            Self::Cluster(cluster) => TestConn::Cluster(cluster.connection().await),
        }
    }
}

impl From<RedisServer> for TestRedis {
    fn from(server: RedisServer) -> Self {
        Self::Standalone(server)
    }
}

/// Something the inspection helpers can read from.
pub trait Inspect {
    fn connection(&self) -> impl Future<Output = TestConn>;
}

impl Inspect for TestRedis {
    async fn connection(&self) -> TestConn {
        self.inspect().await
    }
}

impl Inspect for RedisServer {
    async fn connection(&self) -> TestConn {
        TestConn::Standalone(RedisServer::connection(self).await)
    }
}

/// A connection for inspection, to either kind of Redis.
#[derive(Clone)]
pub enum TestConn {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for TestConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standalone(_) => "TestConn::Standalone",
            Self::Cluster(_) => "TestConn::Cluster",
        })
    }
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

fn node(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|client| client.get_connection_with_timeout(std::time::Duration::from_secs(2)))
        .unwrap_or_else(|e| panic!("connect to the master on {port}: {e}"))
}

/// `cmdstat_<name>:calls=<n>,…,rejected_calls=<m>,…` lines as name → every call that reached the node,
/// executed or rejected before execution (a `MOVED`/`ASK` redirection is a rejected call).
fn parse_command_stats(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let field = |key: &str| -> u64 {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            Some((name.to_owned(), field("calls") + field("rejected_calls")))
        })
        .collect()
}
