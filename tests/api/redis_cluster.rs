//! A real Redis Cluster for one test (or shared by a process's tests): three masters on free loopback ports, without
//! persistence, their slots split evenly; stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::helpers::{unique, wait_until};
use crate::redis_server::{free_port, server_binary, RedisServer};

pub struct RedisCluster {
    nodes: Vec<Child>,
    pub ports: Vec<u16>,
    dir: PathBuf,
    watchdog: Option<Child>,
}

const SLOTS: u16 = 16_384;

impl RedisCluster {
    /// Starts one with three masters, or `None` where Redis cannot run (said loudly; a failure
    /// under CI, as for one Redis).
    pub fn start() -> Option<Self> {
        RedisServer::available().then(|| Self::with_masters(3))
    }

    /// One three-master cluster for every test of this process that needs a cluster but not
    /// one of its own (each keeps its keys under a prefix of its own): a cluster takes about two
    /// seconds to start (a master waits before it takes writes). Its nodes stop when the
    /// process ends, however it ends.
    pub fn shared() -> Option<&'static RedisCluster> {
        static SHARED: OnceLock<Option<RedisCluster>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let mut cluster = Self::start()?;
                cluster.stop_with_this_process();
                Some(cluster)
            })
            .as_ref()
    }

    /// A static is never dropped: a watchdog stops the nodes when this process's end closes
    /// the pipe it reads (its write end is held by the cluster, so open as long as it lives).
    fn stop_with_this_process(&mut self) {
        let pids: Vec<String> = self.nodes.iter().map(|n| n.id().to_string()).collect();
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!("cat >/dev/null; kill {}", pids.join(" ")))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh starts");
        self.watchdog = Some(watchdog);
    }

    pub fn with_masters(masters: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("sessiond-cluster-{}", unique()));
        std::fs::create_dir_all(&dir).expect("a directory for the cluster's files");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            ports: Vec::new(),
            dir,
            watchdog: None,
        };
        for _ in 0..masters {
            cluster.add_node();
        }
        let share = SLOTS / masters;
        for (i, port) in cluster.ports.clone().into_iter().enumerate() {
            let first = share * i as u16;
            let last = if i as u16 == masters - 1 {
                SLOTS - 1
            } else {
                first + share - 1
            };
            // Fresh, whatever the node found on start-up.
            let mut connection = cluster.connection(port);
            let _: () = redis::cmd("FLUSHALL").query(&mut connection).unwrap();
            let _: () = redis::cmd("CLUSTER")
                .arg("RESET")
                .arg("HARD")
                .query(&mut connection)
                .unwrap();
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first.to_string())
                .arg(last.to_string())
                .query(&mut cluster.connection(port))
                .unwrap_or_else(|e| panic!("slots {first}-{last} go to {port}: {e}"));
        }
        let first = cluster.ports[0];
        for port in cluster.ports.clone().into_iter().skip(1) {
            cluster.meet(port, first);
        }
        cluster.wait_until_ok();
        cluster
    }

    /// Starts one with three masters and a replica of each (for failover), once every replica
    /// follows its master.
    pub fn with_replicas() -> Option<Self> {
        let mut cluster = Self::start()?;
        let masters = cluster.ports.clone();
        for master in masters {
            let replica = cluster.add_node();
            cluster.meet(replica, master);
            let id = cluster.node_id(master);
            // A node replicates only a master it already knows of.
            wait_until(
                Duration::from_secs(10),
                "the replica knows its master",
                || {
                    redis::cmd("CLUSTER")
                        .arg("REPLICATE")
                        .arg(&id)
                        .query::<()>(&mut cluster.connection(replica))
                        .is_ok()
                },
            );
        }
        cluster.wait_until_ok();
        wait_until(Duration::from_secs(20), "every replica is in sync", || {
            cluster.replicas_in_sync()
        });
        Some(cluster)
    }

    /// Whether every replica has everything its master wrote.
    pub fn replicas_in_sync(&self) -> bool {
        self.ports.iter().all(|&port| {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut self.connection(port))
                .unwrap_or_default();
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
                    .map(String::from)
            };
            match field("role").as_deref() {
                Some("master") => true,
                Some("slave") => {
                    field("master_link_status").as_deref() == Some("up")
                        && field("slave_repl_offset").is_some()
                        && self.master_offset(&field("master_port").unwrap_or_default())
                            == field("slave_repl_offset")
                }
                _ => false,
            }
        })
    }

    fn master_offset(&self, port: &str) -> Option<String> {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut self.connection(port.parse().ok()?))
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("master_repl_offset:"))
            .map(|v| v.trim().to_string())
    }

    /// Kills the node at `port` at once (`SIGKILL`), as a crash would.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).expect("a node");
        let _ = self.nodes[i].kill();
        let _ = self.nodes[i].wait();
    }

    /// Whether the node at `port` serves `slot` as its master now.
    pub fn serves(&self, port: u16, slot: u16) -> bool {
        let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut self.connection(port))
            .unwrap_or_default();
        let port = i64::from(port);
        slots.iter().any(|range| match range {
            redis::Value::Array(range) => match range.as_slice() {
                [redis::Value::Int(first), redis::Value::Int(last), redis::Value::Array(master), ..] => {
                    (*first..=*last).contains(&i64::from(slot))
                        && matches!(master.get(1), Some(redis::Value::Int(p)) if *p == port)
                }
                _ => false,
            },
            _ => false,
        })
    }

    /// Starts one more node, empty (no slots), not yet met.
    pub fn add_node(&mut self) -> u16 {
        loop {
            let port = free_port();
            let mut child = Command::new(server_binary())
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                .arg("--cluster-config-file")
                .arg(self.dir.join(format!("nodes-{port}.conf")))
                // A replica's full sync writes its master's data here, not where tests run.
                .arg("--dir")
                .arg(&self.dir)
                .args(["--dbfilename", &format!("dump-{port}.rdb")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            wait_until(Duration::from_secs(10), "a cluster node answers", || {
                child.try_wait().ok().flatten().is_some()
                    || redis::Client::open(format!("redis://127.0.0.1:{port}"))
                        .and_then(|c| c.get_connection())
                        .is_ok()
            });
            // Another test's server may have taken the port first: then try another.
            if child.try_wait().ok().flatten().is_none() {
                self.nodes.push(child);
                self.ports.push(port);
                return port;
            }
        }
    }

    pub fn connection(&self, port: u16) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .and_then(|c| c.get_connection())
            .expect("a cluster node answers")
    }

    pub fn meet(&self, port: u16, known: u16) {
        let _: () = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(known)
            .query(&mut self.connection(port))
            .expect("nodes meet");
    }

    /// Waits until every node says the cluster is ok and knows every other node.
    pub fn wait_until_ok(&self) {
        wait_until(
            Duration::from_secs(20),
            "the cluster is ok on every node",
            || {
                self.ports.iter().all(|&port| {
                    let info: String = redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query(&mut self.connection(port))
                        .unwrap_or_default();
                    info.contains("cluster_state:ok")
                        && info.contains(&format!("cluster_known_nodes:{}", self.ports.len()))
                })
            },
        );
    }

    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// A node's id in the cluster.
    pub fn node_id(&self, port: u16) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.connection(port))
            .expect("a node tells its id")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().chain(&mut self.watchdog) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
