//! The counts and checks every store answers: the census and users from the node's replica
//! (caught up first), seats from Redis, and the consistency of the indexes group by group.

use async_trait::async_trait;
use redis::AsyncCommands;

use super::fields::field;
use super::link::unavailable;
use super::RedisStore;
use crate::domain::{Millis, SessionId};
use crate::store::{Census, IndexReport, SessionCounts, StoreError, Users};

#[async_trait]
impl SessionCounts for RedisStore {
    // Like a list, a count first waits for every change made before it (on any node, through
    // any master) to reach this node's replica.
    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError> {
        self.catch_up().await?;
        self.replica.census(now).await
    }

    async fn users(&self, now: Millis) -> Result<Users, StoreError> {
        self.catch_up().await?;
        self.replica.users(now).await
    }

    async fn seats_in_use(&self, organisation: &str, now: Millis) -> Result<u64, StoreError> {
        if self.clustered() {
            return self.seats_held(organisation, now).await;
        }
        let mut invocation = self.call(&self.seats, 0, now);
        invocation
            .key(self.keys.organisation(organisation))
            .arg(organisation);
        self.link
            .check(invocation.invoke_async(&mut self.link.conn()).await)
    }

    async fn check_indexes(&self) -> Result<IndexReport, StoreError> {
        let mut conn = self.link.conn();
        let mut report = IndexReport {
            rows: 0,
            by_id: 0,
            by_user: 0,
            orphans: 0,
        };
        for group in 0..self.keys.groups() {
            let users: Vec<String> = conn
                .smembers(self.keys.users(group))
                .await
                .map_err(unavailable)?;
            for user in &users {
                let members: Vec<String> = conn
                    .smembers(self.keys.user(user))
                    .await
                    .map_err(unavailable)?;
                for id in members.iter().filter_map(|id| SessionId::parse(id)) {
                    let owner: Option<String> = conn
                        .hget(self.keys.session(id), field("user_id"))
                        .await
                        .map_err(unavailable)?;
                    report.rows += usize::from(owner.is_some());
                    report.orphans += usize::from(owner.as_deref() != Some(user));
                }
                report.by_user += members.len();
            }
        }
        report.by_id = report.rows;
        Ok(report)
    }
}
