//! A real Redis Cluster on loopback (`docs/design.md` §8): N masters, optionally one replica each, every
//! node its own `redis-server --cluster-enabled yes` with its own `--cluster-config-file` and `--dir`,
//! joined by `redis-cli --cluster create … --cluster-yes`, ready when every node reports
//! `cluster_state:ok` and all 16,384 slots. Helpers move a slot between masters (`CLUSTER SETSLOT …
//! IMPORTING/MIGRATING`, `MIGRATE`, `SETSLOT … NODE`) and fail a master over (`CLUSTER FAILOVER` on its
//! replica), the way an operator resharding or patching a cluster does. [`RedisCluster::start_tls`] adds a
//! TLS port to every node and runs the cluster bus and replication over TLS (as ElastiCache does with
//! in-transit encryption); Redis answers `CLUSTER SLOTS` with TLS ports to TLS clients, so the code under
//! test connects with `rediss://` seeds while the helpers here keep using the plaintext ports.

use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{ServerProcess, find_binary, free_port, wait_until};

const INSTALL_HINT: &str = "install it with `make setup` (Debian: apt-get install -y redis-server)";
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One node of the cluster.
#[derive(Debug)]
pub struct ClusterNode {
    process: ServerProcess,
    /// The node's TLS port, on a TLS cluster.
    tls_port: Option<u16>,
}

impl ClusterNode {
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    fn connection(&self) -> redis::Connection {
        node_connection(self.port())
    }

    /// Kills the node (an unplanned outage).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// A running cluster, stopped when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts `masters` masters without replicas.
    ///
    /// # Panics
    /// When `redis-server`/`redis-cli` are missing or the cluster does not become ready.
    pub fn start(masters: usize) -> Self {
        Self::start_with(masters, 0, &[])
    }

    /// Starts `masters` masters with one replica each (for failover tests).
    ///
    /// # Panics
    /// As [`RedisCluster::start`].
    pub fn start_with_replicas(masters: usize) -> Self {
        Self::start_with(masters, 1, &[])
    }

    /// Starts `masters` masters with `replicas` replicas each and `extra` arguments for every node.
    ///
    /// # Panics
    /// As [`RedisCluster::start`].
    pub fn start_with(masters: usize, replicas: usize, extra: &[&str]) -> Self {
        Self::start_nodes(masters, replicas, extra, false)
    }

    /// Starts `masters` masters without replicas, each with a TLS port (certificate
    /// `fixtures/cluster-node.crt`, CA `fixtures/cluster-ca.crt`; clients need no certificate), the
    /// cluster bus and replication over TLS.
    ///
    /// # Panics
    /// As [`RedisCluster::start`].
    pub fn start_tls(masters: usize) -> Self {
        Self::start_nodes(masters, 0, &[], true)
    }

    fn start_nodes(masters: usize, replicas: usize, extra: &[&str], tls: bool) -> Self {
        assert!(masters >= 3, "redis-cli --cluster create needs 3 masters");
        let server = find_binary("redis-server", "REDIS_SERVER_BIN", INSTALL_HINT);
        let cli = find_binary("redis-cli", "REDIS_CLI_BIN", INSTALL_HINT);
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let count = masters * (1 + replicas);
        let mut nodes = Vec::with_capacity(count);
        for index in 0..count {
            let node_dir = dir.path().join(format!("node-{index}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let port = free_port();
            // The bus port is set explicitly: port + 10000 may not be free, or not even a port.
            let bus_port = free_port();
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--cluster-port",
                &bus_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &node_dir.display().to_string(),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &node_dir.join("nodes.conf").display().to_string(),
                "--cluster-node-timeout",
                "2000",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            let tls_port = tls.then(free_port);
            if let Some(tls_port) = tls_port {
                args.extend(tls_args(tls_port));
            }
            let process = ServerProcess::start(
                "redis-server (cluster node)",
                &server,
                &args,
                port,
                &node_dir.join("redis.log"),
                Duration::from_secs(10),
            );
            nodes.push(ClusterNode { process, tls_port });
        }
        let mut create = Command::new(&cli);
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let output = create
            .arg("--cluster-replicas")
            .arg(replicas.to_string())
            .arg("--cluster-yes")
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_until_ok();
        if replicas > 0 {
            cluster.wait_until_replicas_synced();
        }
        cluster
    }

    /// Every node's URL, comma-separated: a `REDIS_URL` for `REDIS_CLUSTER=true`.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(ClusterNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every node's `rediss://` URL, comma-separated (a TLS cluster's `REDIS_URL` seeds; the CA is
    /// [`RedisCluster::TLS_CA`]).
    ///
    /// # Panics
    /// On a cluster started without TLS.
    pub fn tls_url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                let port = node.tls_port.expect("a cluster started with start_tls");
                format!("rediss://127.0.0.1:{port}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The CA file that signs the TLS cluster's node certificate (a `REDIS_CA_CERT_FILE`).
    pub const TLS_CA: &str = "cluster-ca.crt";

    /// The nodes, in start order.
    pub fn nodes(&mut self) -> &mut [ClusterNode] {
        &mut self.nodes
    }

    /// A cluster client for direct inspection in tests.
    pub fn client(&self) -> redis::cluster::ClusterClient {
        redis::cluster::ClusterClient::new(
            self.nodes.iter().map(ClusterNode::url).collect::<Vec<_>>(),
        )
        .expect("cluster client")
    }

    /// An async cluster connection for direct inspection in tests.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        self.client()
            .get_async_connection()
            .await
            .expect("connect to the test cluster")
    }

    /// The ports of the current masters, ascending.
    pub fn master_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.slot_ranges().iter().map(|r| r.2).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The port of the master that serves `slot`.
    ///
    /// # Panics
    /// When no master serves it.
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        self.slot_ranges()
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, port)| port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// The slot of `key`, as the cluster computes it (`CLUSTER KEYSLOT`).
    pub fn key_slot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.any_live_node().connection())
            .expect("CLUSTER KEYSLOT")
    }

    /// Moves `slot` and its keys to the master on `to_port`, as `redis-cli --cluster reshard` does:
    /// importing/migrating states, `MIGRATE` of its keys in batches while clients keep writing (they are
    /// redirected with `ASK`), then the new owner announced to every master.
    ///
    /// # Panics
    /// When a step fails or the keys do not drain within 30 s.
    pub fn move_slot(&self, slot: u16, to_port: u16) {
        let from_port = self.master_of_slot(slot);
        if from_port == to_port {
            return;
        }
        let mut from = node_connection(from_port);
        let mut to = node_connection(to_port);
        let from_id = node_id(&mut from);
        let to_id = node_id(&mut to);
        setslot(&mut to, slot, "IMPORTING", &from_id);
        setslot(&mut from, slot, "MIGRATING", &to_id);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query(&mut from)
                .expect("CLUSTER GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "slot {slot} did not drain");
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to_port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("REPLACE")
                .arg("KEYS")
                .arg(&keys)
                .query::<()>(&mut from)
                .expect("MIGRATE");
        }
        // The new owner first, then the old one (which then redirects with MOVED), then the others.
        setslot(&mut to, slot, "NODE", &to_id);
        setslot(&mut from, slot, "NODE", &to_id);
        for port in self.master_ports() {
            if port != from_port && port != to_port {
                setslot(&mut node_connection(port), slot, "NODE", &to_id);
            }
        }
        assert!(
            wait_until(READY_WITHIN, || self.every_node_sees(slot, to_port)),
            "not every node sees slot {slot} on {to_port}"
        );
    }

    /// A graceful failover of the master on `master_port`: `CLUSTER FAILOVER` on its replica, which waits
    /// for the replica to catch up before switching (nothing acknowledged is lost). Returns the new
    /// master's port once every node agrees.
    ///
    /// # Panics
    /// When the master has no replica or the failover does not complete within 30 s.
    pub fn failover(&self, master_port: u16) -> u16 {
        let master_id = node_id(&mut node_connection(master_port));
        let replica = self
            .nodes
            .iter()
            .map(ClusterNode::port)
            .find(|port| {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut node_connection(*port))
                    .unwrap_or_default();
                info.contains("role:slave") && replica_of(*port) == Some(master_id.clone())
            })
            .unwrap_or_else(|| panic!("the master on {master_port} has no replica"));
        redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query::<()>(&mut node_connection(replica))
            .expect("CLUSTER FAILOVER");
        // Every node's view, not one node's: the promoted replica knows first, the others learn by gossip.
        assert!(
            wait_until(READY_WITHIN, || {
                self.nodes.iter().all(|node| {
                    let Some(mut connection) = node_connection_checked(node.port()) else {
                        return false;
                    };
                    let ports: Vec<u16> = slot_ranges_from(&mut connection)
                        .iter()
                        .map(|r| r.2)
                        .collect();
                    ports.contains(&replica) && !ports.contains(&master_port)
                })
            }),
            "the replica on {replica} did not take over from {master_port}"
        );
        self.wait_until_ok();
        replica
    }

    /// `total_commands_processed` of every master, by port: how the load spread.
    pub fn commands_per_master(&self) -> Vec<(u16, u64)> {
        self.master_ports()
            .into_iter()
            .map(|port| {
                let info: String = redis::cmd("INFO")
                    .arg("stats")
                    .query(&mut node_connection(port))
                    .expect("INFO stats");
                let count = info
                    .lines()
                    .find_map(|line| line.strip_prefix("total_commands_processed:"))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                (port, count)
            })
            .collect()
    }

    fn wait_until_ok(&self) {
        let ready = wait_until(READY_WITHIN, || {
            self.nodes.iter().all(|node| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut node_connection(node.port()))
                    .unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            })
        });
        assert!(ready, "the cluster did not report cluster_state:ok");
    }

    fn wait_until_replicas_synced(&self) {
        let synced = wait_until(READY_WITHIN, || {
            self.nodes.iter().all(|node| {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut node_connection(node.port()))
                    .unwrap_or_default();
                !info.contains("role:slave") || info.contains("master_link_status:up")
            })
        });
        assert!(synced, "the replicas did not finish their first sync");
    }

    fn every_node_sees(&self, slot: u16, port: u16) -> bool {
        self.master_ports().into_iter().all(|master| {
            slot_ranges_from(&mut node_connection(master))
                .into_iter()
                .any(|(start, end, owner)| (start..=end).contains(&slot) && owner == port)
        })
    }

    fn any_live_node(&self) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|node| node_connection_checked(node.port()).is_some())
            .expect("a live cluster node")
    }

    fn slot_ranges(&self) -> Vec<(u16, u16, u16)> {
        slot_ranges_from(&mut self.any_live_node().connection())
    }
}

/// `CLUSTER SLOTS` as (first slot, last slot, master port).
fn slot_ranges_from(connection: &mut redis::Connection) -> Vec<(u16, u16, u16)> {
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(connection)
        .expect("CLUSTER SLOTS");
    slots
        .into_iter()
        .filter_map(|range| {
            let redis::Value::Array(fields) = range else {
                return None;
            };
            let int = |value: &redis::Value| match value {
                redis::Value::Int(n) => u16::try_from(*n).ok(),
                _ => None,
            };
            let master = match fields.get(2) {
                Some(redis::Value::Array(node)) => node.get(1).and_then(int)?,
                _ => return None,
            };
            Some((int(fields.first()?)?, int(fields.get(1)?)?, master))
        })
        .collect()
}

fn node_connection(port: u16) -> redis::Connection {
    node_connection_checked(port).unwrap_or_else(|| panic!("cannot connect to cluster node {port}"))
}

fn node_connection_checked(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()
}

fn node_id(connection: &mut redis::Connection) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(connection)
        .expect("CLUSTER MYID")
}

/// The id of the master the node on `port` replicates, from its `CLUSTER NODES` line.
fn replica_of(port: u16) -> Option<String> {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut node_connection(port))
        .ok()?;
    let line = nodes.lines().find(|line| line.contains("myself"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields
        .get(3)
        .filter(|id| **id != "-")
        .map(|id| (*id).to_owned())
}

fn setslot(connection: &mut redis::Connection, slot: u16, state: &str, node: &str) {
    redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg(state)
        .arg(node)
        .query::<()>(connection)
        .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {state}: {e}"));
}

/// A node's TLS settings: its TLS port, the fixture certificate (usable as server and as client
/// certificate, which the cluster bus needs), clients without certificates.
fn tls_args(tls_port: u16) -> Vec<String> {
    let fixture = |name: &str| crate::fixture_path(name).display().to_string();
    vec![
        "--tls-port".to_owned(),
        tls_port.to_string(),
        "--tls-cert-file".to_owned(),
        fixture("cluster-node.crt"),
        "--tls-key-file".to_owned(),
        fixture("cluster-node.key"),
        "--tls-ca-cert-file".to_owned(),
        fixture(RedisCluster::TLS_CA),
        "--tls-auth-clients".to_owned(),
        "no".to_owned(),
        "--tls-cluster".to_owned(),
        "yes".to_owned(),
        "--tls-replication".to_owned(),
        "yes".to_owned(),
    ]
}
