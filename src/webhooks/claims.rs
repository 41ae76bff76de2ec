//! Which node delivers an event: on one node, this one; on Redis, the node holding the
//! event's claim (`{prefix}wh:{event id}`, a hash): a lease that its holder renews with each
//! attempt, through the backoff before the next one, and marks done at the end. The claim
//! carries the delivery's progress (attempts, first attempt, next due time), so a node that
//! takes over from one that died goes on with the same backoff instead of starting again. A
//! node that cannot reach Redis delivers nothing until it can: sending without a claim would
//! send twice.

use std::sync::{Arc, Mutex};

use crate::store::{RedisKeys, RedisLink};
use std::time::Duration;

/// A delivery's progress, as its claim keeps it (Unix ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub attempts: u32,
    pub first_attempt_ms: u64,
    /// When the next attempt is due.
    pub due_ms: u64,
}

/// What a node may do with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Deliver it, going on from this progress (as far as the claim knows it).
    Mine(Progress),
    /// Another node holds it now.
    Others,
    /// It has been delivered (or abandoned).
    Done,
    /// Who holds it cannot be known now (Redis is unreachable): look again later.
    Unknown,
}

pub trait Claims: Send + Sync {
    /// Claims (or renews the claim on) the delivery of `id` for `lease`.
    fn claim(&self, id: &str, lease: Duration) -> Claim;
    /// Records a failed attempt's progress, holding the claim until the next attempt is due
    /// and `lease` after.
    fn progress(&self, id: &str, progress: Progress, lease: Duration);
    /// Marks the delivery of `id` finished.
    fn settle(&self, id: &str);
    /// Gives up this node's claim on `id` (it is stopping), so another node takes it at once.
    fn release(&self, id: &str);
}

/// One node: every delivery is its own.
pub struct LocalClaims;

impl Claims for LocalClaims {
    fn claim(&self, _id: &str, _lease: Duration) -> Claim {
        Claim::Mine(Progress::default())
    }

    fn progress(&self, _id: &str, _progress: Progress, _lease: Duration) {}

    fn settle(&self, _id: &str) {}

    fn release(&self, _id: &str) {}
}

/// Claims kept in Redis, shared by every node.
pub struct RedisClaims {
    link: Arc<RedisLink>,
    connection: Mutex<Option<Box<dyn redis::ConnectionLike + Send>>>,
    keys: RedisKeys,
    node: String,
}

/// How long a claim, and a finished delivery's mark, are kept: longer than any node retries.
const KEEP_FOR: Duration = Duration::from_secs(2 * 3600);

impl RedisClaims {
    pub fn new(link: Arc<RedisLink>, prefix: &str, node: String) -> Self {
        RedisClaims {
            link,
            connection: Mutex::new(None),
            keys: RedisKeys::new(prefix),
            node,
        }
    }

    fn key(&self, id: &str) -> String {
        self.keys.webhook(id)
    }

    /// Runs `command` on the node's connection, connecting first if need be (to the master of
    /// now: after a failover, the new one).
    fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> redis::RedisResult<T> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(self.link.blocking()?);
        }
        let connection = slot.as_mut().expect("connected just now");
        let outcome = command.query(connection.as_mut());
        match &outcome {
            Ok(_) => self.link.succeeded(),
            Err(e) => {
                self.link.failed(e);
                *slot = None;
            }
        }
        outcome
    }
}

/// Redis' clock, in ms: every node's leases are judged by one clock.
const NOW: &str =
    "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

/// Takes the claim if it is free, lapsed or this node's, renewing its lease; says whose it is,
/// and for this node, the progress it carries.
const CLAIM: &str = r"
local c = redis.call('HMGET', KEYS[1], 'done', 'holder', 'until', 'attempts', 'first', 'due')
if c[1] then return {'done'} end
if c[2] and c[2] ~= ARGV[1] and tonumber(c[3]) > now then return {'others'} end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'until', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'mine', c[4] or '0', c[5] or '0', c[6] or '0'}
";

/// Records progress if this node holds the claim, holding it through the backoff.
const PROGRESS: &str = r"
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 'others' end
redis.call('HSET', KEYS[1], 'attempts', ARGV[2], 'first', ARGV[3], 'due', ARGV[4],
  'until', math.max(now, tonumber(ARGV[4])) + tonumber(ARGV[5]))
return 'ok'
";

/// Marks the delivery finished, for longer than any node retries it.
const SETTLE: &str = r"
redis.call('HSET', KEYS[1], 'done', now)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 'ok'
";

/// Gives the claim up if this node holds it; its progress stays for the next holder.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then redis.call('HDEL', KEYS[1], 'holder', 'until') end
return 'ok'
";

/// A script of `body` after Redis' clock, as an EVAL on `key`.
fn script(body: &str, key: String) -> redis::Cmd {
    let mut command = redis::cmd("EVAL");
    command.arg(format!("{NOW}{body}")).arg(1).arg(key);
    command
}

impl Claims for RedisClaims {
    fn claim(&self, id: &str, lease: Duration) -> Claim {
        let mut command = script(CLAIM, self.key(id));
        command
            .arg(&self.node)
            .arg(lease.as_millis() as u64)
            .arg(KEEP_FOR.as_millis() as u64);
        match self.run::<Vec<String>>(&command) {
            Ok(reply) => match reply.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["done"] => Claim::Done,
                ["others"] => Claim::Others,
                ["mine", attempts, first, due] => Claim::Mine(Progress {
                    attempts: attempts.parse().unwrap_or(0),
                    first_attempt_ms: first.parse().unwrap_or(0),
                    due_ms: due.parse().unwrap_or(0),
                }),
                _ => Claim::Unknown,
            },
            Err(e) => {
                log::debug!("cannot claim webhook delivery {id} in Redis: {e}");
                Claim::Unknown
            }
        }
    }

    fn progress(&self, id: &str, progress: Progress, lease: Duration) {
        let mut command = script(PROGRESS, self.key(id));
        command
            .arg(&self.node)
            .arg(progress.attempts)
            .arg(progress.first_attempt_ms)
            .arg(progress.due_ms)
            .arg(lease.as_millis() as u64);
        if let Err(e) = self.run::<String>(&command) {
            log::warn!("cannot record webhook delivery {id}'s progress in Redis: {e}");
        }
    }

    fn settle(&self, id: &str) {
        let mut command = script(SETTLE, self.key(id));
        command.arg(KEEP_FOR.as_millis() as u64);
        if let Err(e) = self.run::<String>(&command) {
            log::warn!("cannot mark webhook delivery {id} done in Redis: {e}");
        }
    }

    fn release(&self, id: &str) {
        let mut command = script(RELEASE, self.key(id));
        command.arg(&self.node);
        if let Err(e) = self.run::<String>(&command) {
            log::warn!("cannot release webhook delivery {id} in Redis: {e}");
        }
    }
}
