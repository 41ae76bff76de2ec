//! The node's way to Redis: one server named by its URL, the master Sentinel names
//! (`redis+sentinel://`), followed across failovers without a restart, or a cluster
//! (`redis+cluster://`), whose client follows `MOVED`/`ASK` and refreshes its map of slots.
//!
//! redis-rs' Sentinel support finds the master when asked; this asks again whenever a call to
//! the master fails (a dead master, or a demoted one answering `READONLY`), whenever a
//! sentinel announces `+switch-master`, and every second while Redis is unreachable. Every
//! user of Redis on the node (requests, the replica's change feed, the event reader, the audit
//! trail, webhook claims) takes its connection or client from here, so all follow the new
//! master together. Each call's outcome also goes to the [`Outage`] that logs outages once.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr,
};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, TlsMode, Value};

use super::TIMEOUT;
use crate::store::outage::Outage;
use crate::store::StoreError;

/// Where Redis is, as the URL says.
#[derive(Clone)]
pub enum Target {
    /// `redis://`, `rediss://`, `redis+unix://`, `unix://`: one server.
    Direct(redis::Client),
    /// `redis[s]+sentinel://[user:pass@]host:port,host:port/master[/db]`: the master the
    /// sentinels name. The credentials and database are the master's; sentinels are asked
    /// without them.
    Sentinel {
        sentinels: Vec<redis::ConnectionInfo>,
        master: String,
        node: SentinelNodeConnectionInfo,
    },
    /// `redis[s]+cluster://[user:pass@]host:port,host:port`: a Redis or Valkey Cluster, found
    /// from any of the nodes named.
    Cluster(Vec<redis::ConnectionInfo>),
}

const SENTINEL_PORT: u16 = 26_379;

impl Target {
    /// Parses a store URL. Errors name what is wrong, never the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Target, String> {
        if let Some((tls, rest)) = url
            .strip_prefix("redis+cluster://")
            .map(|rest| (false, rest))
            .or_else(|| {
                url.strip_prefix("rediss+cluster://")
                    .map(|rest| (true, rest))
            })
        {
            return Self::cluster(tls, rest);
        }
        let (tls, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            (true, rest)
        } else {
            return redis::Client::open(url)
                .map(Target::Direct)
                .map_err(|e| format!("not a usable Redis URL ({:?})", e.kind()));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, authority),
        };
        let mut path = path.split('/').filter(|p| !p.is_empty());
        let master = path
            .next()
            .ok_or("a Sentinel URL must name the master after the hosts (…:26379/mymaster)")?;
        let db = path.next().unwrap_or("0");
        if path.next().is_some() || db.parse::<u32>().is_err() {
            return Err("a Sentinel URL's path is /master or /master/db".into());
        }
        if hosts.trim().is_empty() {
            return Err("a Sentinel URL names at least one sentinel".into());
        }
        let scheme = if tls { "rediss" } else { "redis" };
        let sentinels = hosts
            .split(',')
            .map(|host| {
                let host = host.trim();
                let has_port = host.rsplit_once(':').is_some_and(|(h, p)| {
                    !h.is_empty() && !p.contains(']') && p.parse::<u16>().is_ok()
                });
                let address = match has_port {
                    true => host.to_string(),
                    false => format!("{host}:{SENTINEL_PORT}"),
                };
                format!("{scheme}://{address}")
                    .into_connection_info()
                    .map_err(|e| format!("a sentinel's address is not usable ({:?})", e.kind()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        // The master's credentials and database, decoded as any Redis URL's are.
        let userinfo = credentials.map_or(String::new(), |c| format!("{c}@"));
        let settings = format!("redis://{userinfo}sentinel-master/{db}")
            .into_connection_info()
            .map_err(|e| format!("not a usable Redis URL ({:?})", e.kind()))?
            .redis_settings()
            .clone();
        let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(settings);
        if tls {
            node = node.set_tls_mode(TlsMode::Secure);
        }
        Ok(Target::Sentinel {
            sentinels,
            master: master.to_string(),
            node,
        })
    }
}

impl Target {
    /// The nodes of a cluster URL, each with the URL's credentials.
    fn cluster(tls: bool, rest: &str) -> Result<Target, String> {
        let (credentials, hosts) = match rest.trim_end_matches('/').rsplit_once('@') {
            Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
            None => (String::new(), rest.trim_end_matches('/')),
        };
        if hosts.contains('/') {
            return Err("a cluster URL names its nodes only (a cluster has no databases)".into());
        }
        if hosts.trim().is_empty() {
            return Err("a cluster URL names at least one node".into());
        }
        let scheme = if tls { "rediss" } else { "redis" };
        hosts
            .split(',')
            .map(|host| {
                format!("{scheme}://{credentials}{}", host.trim())
                    .into_connection_info()
                    .map_err(|e| format!("a cluster node's address is not usable ({:?})", e.kind()))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Target::Cluster)
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }
}

/// The shared connection requests use: to one server (the master), or to a cluster.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// How long a call to a cluster may take, retries included, before it fails: the cluster
/// client can be left waiting on a node that died (its own timeouts do not always end the
/// wait), and a failed call is what makes the link connect afresh.
const CLUSTER_CALL_LIMIT: Duration = Duration::from_millis(TIMEOUT.as_millis() as u64 * 3);

/// `call`, failing with a timeout past [`CLUSTER_CALL_LIMIT`].
async fn bounded<T>(call: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(CLUSTER_CALL_LIMIT, call)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the cluster did not answer in time",
            )
            .into())
        })
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => Box::pin(bounded(conn.req_packed_command(cmd))),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => {
                Box::pin(bounded(conn.req_packed_commands(pipeline, offset, count)))
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Conn {
    /// Runs `cmd` on every master (of a cluster; on one server, there), with each one's answer.
    pub async fn on_every_master(&mut self, cmd: &Cmd) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(conn) => Ok(vec![cmd.query_async(conn).await?]),
            Conn::Cluster(conn) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                Ok(
                    match bounded(conn.route_command(cmd.clone(), routing)).await? {
                        Value::Map(answers) => answers.into_iter().map(|(_, v)| v).collect(),
                        other => vec![other],
                    },
                )
            }
        }
    }

    /// Waits until `replicas` replicas confirm this connection's writes (`WAIT`), or `timeout`
    /// passes; the number that did. On a cluster, asked of the master of `key`'s slot: the one
    /// that ran a script declaring `key`, over the same connection.
    pub async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        match self {
            Conn::Single(conn) => wait.query_async(conn).await,
            Conn::Cluster(conn) => {
                let route = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                Ok(redis::from_redis_value(
                    bounded(conn.route_command(wait, routing)).await?,
                )?)
            }
        }
    }
}

/// The master in use: a client (for connections of their own, such as subscriptions) and the
/// shared multiplexed connection requests use.
struct Master {
    client: redis::Client,
    conn: Conn,
    /// With replicas to wait for, a second connection for the writes that wait (`WAIT` blocks
    /// its connection, so validations do not queue behind it).
    waited: Option<Conn>,
}

pub struct Link {
    target: Target,
    /// Whether writes wait for replicas (each master then gets a second connection).
    waits: bool,
    sentinel: tokio::sync::Mutex<Option<Sentinel>>,
    master: RwLock<Master>,
    outage: Outage,
    /// On a cluster, the node the next subscription goes to.
    next_node: std::sync::atomic::AtomicUsize,
}

/// How often the node asks Sentinel where the master is while calls to it fail.
const RESOLVE_SPACING: Duration = Duration::from_millis(250);

/// How often the node connects to a cluster afresh while calls to it fail.
const CLUSTER_RECONNECT_SPACING: Duration = Duration::from_secs(1);

impl Link {
    /// Connects to the target (through Sentinel, to the master it names now); `waits`: some
    /// writes will wait for replicas.
    pub async fn connect(target: Target, waits: bool) -> Result<Arc<Link>, StoreError> {
        let mut sentinel = match &target {
            Target::Direct(_) | Target::Cluster(_) => None,
            Target::Sentinel { sentinels, .. } => {
                Some(Sentinel::build(sentinels.clone()).map_err(unavailable)?)
            }
        };
        let client = match (&target, sentinel.as_mut()) {
            (Target::Sentinel { master, node, .. }, Some(sentinel)) => sentinel
                .async_master_for(master, Some(node))
                .await
                .map_err(|e| StoreError::Unavailable(format!("Sentinel: {e}")))?,
            (Target::Direct(client), _) => client.clone(),
            (Target::Cluster(nodes), _) => {
                redis::Client::open(nodes[0].clone()).map_err(unavailable)?
            }
            (Target::Sentinel { .. }, None) => unreachable!("a Sentinel target has sentinels"),
        };
        let master = match &target {
            Target::Cluster(nodes) => Master::cluster(client, nodes, waits).await,
            _ => Master::open(client, waits).await,
        }
        .map_err(unavailable)?;
        let link = Arc::new(Link {
            target,
            waits,
            sentinel: tokio::sync::Mutex::new(sentinel),
            master: RwLock::new(master),
            outage: Outage::new("Redis"),
            next_node: std::sync::atomic::AtomicUsize::new(0),
        });
        match link.target {
            Target::Sentinel { .. } => {
                link.clone().watch_sentinels();
                link.clone().recover_while_down(RESOLVE_SPACING);
            }
            Target::Cluster(_) => link.clone().recover_while_down(CLUSTER_RECONNECT_SPACING),
            Target::Direct(_) => {}
        }
        Ok(link)
    }

    /// What `pick` takes of the master in use (cloning only that: this runs per request).
    fn current<T>(&self, pick: impl FnOnce(&Master) -> &T) -> T
    where
        T: Clone,
    {
        pick(&self.master.read().unwrap_or_else(|e| e.into_inner())).clone()
    }

    /// The shared connection to the master (or the cluster).
    pub fn conn(&self) -> Conn {
        self.current(|m| &m.conn)
    }

    /// The connection for writes that wait for replicas.
    pub fn waited(&self) -> Conn {
        self.current(|m| m.waited.as_ref().unwrap_or(&m.conn))
    }

    /// A client of the master, for connections of their own; on a cluster, of one of the
    /// nodes named, the next one at each call (a subscription to any node hears every node's
    /// messages, and one that drops goes on at the next node).
    pub fn client(&self) -> redis::Client {
        if let Target::Cluster(nodes) = &self.target {
            let next = self
                .next_node
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Ok(client) = redis::Client::open(nodes[next % nodes.len()].clone()) {
                return client;
            }
        }
        self.current(|m| &m.client)
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        self.target.is_cluster()
    }

    /// A blocking connection of its own, for work done off the request path (webhook claims).
    pub fn blocking(&self) -> RedisResult<Box<dyn redis::ConnectionLike + Send>> {
        if let Target::Cluster(nodes) = &self.target {
            let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT)
                .build()?;
            return Ok(Box::new(client.get_connection()?));
        }
        let connection = self.client().get_connection_with_timeout(TIMEOUT)?;
        connection.set_read_timeout(Some(TIMEOUT))?;
        Ok(Box::new(connection))
    }

    /// Records a call's outcome: an error is `Unavailable` (and may mean the master moved).
    pub fn check<T>(&self, outcome: RedisResult<T>) -> Result<T, StoreError> {
        match outcome {
            Ok(value) => {
                self.outage.succeeded();
                Ok(value)
            }
            Err(e) => {
                self.failed(&e);
                Err(unavailable(e))
            }
        }
    }

    /// Records a failure that did not come from a call's result (a feed that stopped).
    /// With Sentinel, the watcher asks where the master is while calls fail.
    pub fn failed(&self, reason: &dyn std::fmt::Display) {
        self.outage.failed(reason);
    }

    /// Records that Redis answered, outside [`Link::check`].
    pub fn succeeded(&self) {
        self.outage.succeeded();
    }

    /// Asks Sentinel which server is the master, and switches to it if it is another. One
    /// question at a time.
    async fn resolve(&self) {
        let Target::Sentinel { master, node, .. } = &self.target else {
            return;
        };
        let Ok(mut sentinel) = self.sentinel.try_lock() else {
            return;
        };
        let Some(sentinel) = sentinel.as_mut() else {
            return;
        };
        let client = match sentinel.async_master_for(master, Some(node)).await {
            Ok(client) => client,
            Err(e) => return log::debug!("Sentinel names no usable master {master:?}: {e}"),
        };
        let address = client.get_connection_info().addr().clone();
        if *self.client().get_connection_info().addr() == address {
            return;
        }
        match Master::open(client, self.waits).await {
            Ok(opened) => {
                *self.master.write().unwrap_or_else(|e| e.into_inner()) = opened;
                log::warn!("Sentinel names {address} as master {master:?}; following it");
            }
            Err(e) => log::debug!("cannot connect to the new master {address}: {e}"),
        }
    }

    /// Follows `+switch-master` on the sentinels.
    fn watch_sentinels(self: Arc<Self>) {
        let Target::Sentinel { sentinels, .. } = &self.target else {
            return;
        };
        let sentinels = sentinels.clone();
        let link = Arc::downgrade(&self);
        actix_web::rt::spawn(async move {
            let mut next = 0;
            loop {
                let Some(this) = link.upgrade() else { return };
                let info = sentinels[next % sentinels.len()].clone();
                next += 1;
                if let Err(e) = this.follow_switches(info).await {
                    log::debug!("listening to a sentinel stopped: {e}");
                }
                drop(this);
                actix_web::rt::time::sleep(RESOLVE_SPACING).await;
            }
        });
    }

    /// While calls fail, tries every `spacing` to find Redis again: asks Sentinel where the
    /// master is (a dead or demoted master; a switch no sentinel was heard announcing), or
    /// connects to a cluster afresh (a new connection learns the slots from the nodes that
    /// answer, where the one in use may still be waiting on a master that died).
    fn recover_while_down(self: Arc<Self>, spacing: Duration) {
        let link = Arc::downgrade(&self);
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(spacing).await;
                let Some(this) = link.upgrade() else { return };
                if this.outage.is_down() {
                    this.resolve().await;
                    this.reconnect().await;
                }
            }
        });
    }

    /// Connects to a cluster afresh.
    async fn reconnect(&self) {
        let Target::Cluster(nodes) = &self.target else {
            return;
        };
        let fresh = Master::cluster(self.client(), nodes, self.waits);
        match tokio::time::timeout(CLUSTER_CALL_LIMIT, fresh).await {
            Ok(Ok(fresh)) => {
                *self.master.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                log::warn!("connected to the cluster afresh while calls to it fail");
            }
            Ok(Err(e)) => log::debug!("cannot connect to the cluster afresh: {e}"),
            Err(_) => log::debug!("connecting to the cluster afresh timed out"),
        }
    }

    async fn follow_switches(&self, sentinel: redis::ConnectionInfo) -> RedisResult<()> {
        let client = redis::Client::open(sentinel)?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe("+switch-master").await?;
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
            let payload: String = message.get_payload()?;
            if let Target::Sentinel { master, .. } = &self.target {
                if payload.split(' ').next() == Some(master.as_str()) {
                    self.resolve().await;
                }
            }
        }
        Ok(())
    }
}

impl Master {
    /// A cluster, through a client of one of its nodes (for subscriptions).
    async fn cluster(
        client: redis::Client,
        nodes: &[redis::ConnectionInfo],
        waits: bool,
    ) -> RedisResult<Master> {
        let cluster = ClusterClient::builder(nodes.to_vec())
            .connection_timeout(TIMEOUT)
            .response_timeout(TIMEOUT)
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()?;
        let waited = match waits {
            true => Some(Conn::Cluster(cluster.get_async_connection().await?)),
            false => None,
        };
        Ok(Master {
            client,
            conn: Conn::Cluster(cluster.get_async_connection().await?),
            waited,
        })
    }

    async fn open(client: redis::Client, waits: bool) -> RedisResult<Master> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = client
            .get_connection_manager_with_config(config.clone())
            .await?;
        let waited = match waits {
            true => Some(client.get_connection_manager_with_config(config).await?),
            false => None,
        };
        Ok(Master {
            client,
            conn: Conn::Single(conn),
            waited: waited.map(Conn::Single),
        })
    }
}

pub(super) fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("Redis: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinel(url: &str) -> (Vec<String>, String) {
        match Target::parse(url).unwrap() {
            Target::Sentinel {
                sentinels, master, ..
            } => (
                sentinels.iter().map(|s| s.addr().to_string()).collect(),
                master,
            ),
            _ => panic!("{url} is a Sentinel URL"),
        }
    }

    #[test]
    fn sentinel_urls_name_their_sentinels_and_master() {
        let (hosts, master) = sentinel(
            "redis+sentinel://ops:p%40ss@127.0.0.1:26379,127.0.0.1:26380,localhost/mymaster/2",
        );
        assert_eq!(
            hosts,
            ["127.0.0.1:26379", "127.0.0.1:26380", "localhost:26379"]
        );
        assert_eq!(master, "mymaster");
        for bad in [
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel://127.0.0.1:26379/",
            "redis+sentinel:///mymaster",
            "redis+sentinel://127.0.0.1:26379/mymaster/x",
            "redis+sentinel://127.0.0.1:26379/mymaster/1/2",
        ] {
            let error = Target::parse(bad).err().unwrap_or_else(|| panic!("{bad}"));
            assert!(!error.contains("127.0.0.1"), "{error}");
        }
        assert_eq!(
            Target::parse("redis+sentinel:///mymaster").err().unwrap(),
            "a Sentinel URL names at least one sentinel"
        );
        assert!(matches!(
            Target::parse("redis://127.0.0.1:6379/0"),
            Ok(Target::Direct(_))
        ));
    }
}
