//! Which node delivers an event: on one node, this one; on Redis, the node holding the
//! event's claim (`{prefix}wh:{event id}`), a lease that its holder renews with each attempt and
//! marks done at the end. A node that finds another's live claim looks again once it could
//! have lapsed, so a delivery outlives the node that started it.

use std::sync::Mutex;
use std::time::Duration;

/// What a node may do with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Deliver it.
    Mine,
    /// Another node holds it now.
    Others,
    /// It has been delivered (or abandoned).
    Done,
}

pub trait Claims: Send + Sync {
    /// Claims (or renews the claim on) the delivery of `id` for `lease`.
    fn claim(&self, id: &str, lease: Duration) -> Claim;
    /// Marks the delivery of `id` finished.
    fn settle(&self, id: &str);
    /// Gives up this node's claim on `id` (it is stopping), so another node takes it at once.
    fn release(&self, id: &str);
}

/// One node: every delivery is its own.
pub struct LocalClaims;

impl Claims for LocalClaims {
    fn claim(&self, _id: &str, _lease: Duration) -> Claim {
        Claim::Mine
    }

    fn settle(&self, _id: &str) {}

    fn release(&self, _id: &str) {}
}

/// Claims kept in Redis, shared by every node.
pub struct RedisClaims {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
    prefix: String,
    node: String,
}

/// How long a finished delivery's mark is kept: longer than any node retries.
const DONE_FOR: Duration = Duration::from_secs(2 * 3600);

impl RedisClaims {
    pub fn new(url: &str, prefix: &str, node: String) -> redis::RedisResult<Self> {
        Ok(RedisClaims {
            client: redis::Client::open(url)?,
            connection: Mutex::new(None),
            prefix: prefix.to_string(),
            node,
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}wh:{id}", self.prefix)
    }

    /// Runs `command` on the node's connection, connecting first if need be.
    fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> redis::RedisResult<T> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            let connection = self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))?;
            connection.set_read_timeout(Some(Duration::from_secs(2)))?;
            *slot = Some(connection);
        }
        let outcome = command.query(slot.as_mut().expect("connected just now"));
        if outcome.is_err() {
            *slot = None;
        }
        outcome
    }
}

/// Takes the claim if it is free or this node's, renewing its lease; says whose it is.
const CLAIM: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == 'done' then return 'done' end
if holder and holder ~= ARGV[1] then return 'others' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'mine'
";

/// Deletes the claim if this node holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'ok'
";

impl Claims for RedisClaims {
    fn claim(&self, id: &str, lease: Duration) -> Claim {
        let mut command = redis::cmd("EVAL");
        command
            .arg(CLAIM)
            .arg(1)
            .arg(self.key(id))
            .arg(&self.node)
            .arg(lease.as_millis() as u64);
        match self.run::<String>(&command).as_deref() {
            Ok("done") => Claim::Done,
            Ok("others") => Claim::Others,
            Ok(_) => Claim::Mine,
            // Better twice than never: receivers deduplicate by webhook-id.
            Err(e) => {
                log::warn!("cannot claim webhook delivery {id} in Redis ({e}); delivering anyway");
                Claim::Mine
            }
        }
    }

    fn settle(&self, id: &str) {
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(id))
            .arg("done")
            .arg("PX")
            .arg(DONE_FOR.as_millis() as u64);
        if let Err(e) = self.run::<()>(&command) {
            log::warn!("cannot mark webhook delivery {id} done in Redis: {e}");
        }
    }

    fn release(&self, id: &str) {
        let mut command = redis::cmd("EVAL");
        command
            .arg(RELEASE)
            .arg(1)
            .arg(self.key(id))
            .arg(&self.node);
        if let Err(e) = self.run::<String>(&command) {
            log::warn!("cannot release webhook delivery {id} in Redis: {e}");
        }
    }
}
