//! The Redis a process-level scenario runs against, standalone or a real 3-master cluster, so the same
//! scenario (the chaos test above all) runs on both: how a worker process and the test reach it, and
//! on a cluster which master serves each partition.

use std::collections::{BTreeMap, BTreeSet};

use scoreboard_shared::redis::RedisConn;
use scoreboard_shared::redis::keys::PartitionKeys;
use scoreboard_testkit::{RedisCluster, RedisServer};

/// A running Redis, stopped when dropped.
#[derive(Debug)]
pub enum RedisUnderTest {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl RedisUnderTest {
    /// A standalone server without persistence.
    pub fn standalone() -> Self {
        Self::Standalone(RedisServer::start())
    }

    /// A cluster of 3 masters without replicas.
    pub fn cluster() -> Self {
        Self::Cluster(RedisCluster::start(3))
    }

    /// A cluster of 3 masters with one replica each (for failover).
    pub fn cluster_with_replicas() -> Self {
        Self::Cluster(RedisCluster::start_with_replicas(3))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// `REDIS_URL`: the server's URL, or every node's, comma-separated.
    pub fn url(&self) -> String {
        match self {
            Self::Standalone(server) => server.url(),
            Self::Cluster(cluster) => cluster.url(),
        }
    }

    /// What a worker process needs besides `REDIS_URL` (`REDIS_CLUSTER=true` on a cluster).
    pub fn extra_env(&self) -> Vec<(&'static str, &'static str)> {
        if self.is_cluster() {
            vec![("REDIS_CLUSTER", "true")]
        } else {
            Vec::new()
        }
    }

    /// A connection as the components open it (the cluster client on a cluster).
    pub fn connection(&self) -> RedisConn {
        super::redis_manager_for(&self.url(), self.is_cluster())
    }

    /// The cluster, if this is one.
    pub fn as_cluster(&self) -> Option<&RedisCluster> {
        match self {
            Self::Cluster(cluster) => Some(cluster),
            Self::Standalone(_) => None,
        }
    }
}

/// The port of the master serving each partition's slot (`{sb:p}`), by partition.
pub fn partition_masters(cluster: &RedisCluster, partitions: u16) -> BTreeMap<u16, u16> {
    (0..partitions)
        .map(|partition| {
            let slot = cluster.key_slot(&PartitionKeys::new(partition).updates());
            (partition, cluster.master_of_slot(slot))
        })
        .collect()
}

/// Asserts that the partitions live on every master of `cluster` (so a scenario loads them all).
pub fn assert_partitions_on_every_master(cluster: &RedisCluster, partitions: u16) {
    let masters: BTreeSet<u16> = cluster.master_ports().into_iter().collect();
    let serving: BTreeSet<u16> = partition_masters(cluster, partitions)
        .into_values()
        .collect();
    assert_eq!(
        serving, masters,
        "the {partitions} partitions do not live on every master"
    );
}
