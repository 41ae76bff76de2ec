//! A login, in named steps under the user's entry: weigh the user's sessions (ending the
//! expired), decide by the one login rule ([`decide`]), then end what it says and store the
//! new session.

use super::chains::{HeldUser, UserChain};
use super::rows::RowRef;
use super::Engine;
use crate::domain::login::{decide, Decision, LiveSession};
use crate::domain::{EndReason, Millis, SessionData, SessionRecord};
use crate::events::DenyReason;
use crate::store::{BlockingSession, Created, Insert, LoginRules, StoreError};

/// One of the user's live sessions, where it is and what a denial shows of it.
struct Weighed {
    at: RowRef,
    blocking: BlockingSession,
    live: LiveSession,
}

impl Engine {
    pub(super) fn create(
        &self,
        insert: Insert,
        rules: LoginRules,
        now: Millis,
    ) -> Result<Created, StoreError> {
        let Insert {
            id,
            digest,
            session,
        } = insert;
        let data = session.into_data(id, now);
        // The user's entry is held until the login is decided and stored: for this user the
        // rules' checks and the insert are one step.
        let mut chain = self.hold_user(&data.user_id);
        let live = self.weigh(&mut chain, &data, now);
        let sessions: Vec<LiveSession> = live.iter().map(|w| w.live).collect();
        let decision = decide(&rules, data.ip_address, &sessions, || {
            // A user new to a limited organisation reserves a seat, decided before anything
            // ends and held until the session is stored, so racing logins see it.
            let limit = rules.seats.unwrap_or(u32::MAX);
            !self
                .seats
                .reserve(&data.organisation, &data.user_id, limit, |at| {
                    self.live(self.shard(at.shard()).row(at.slot()), now)
                })
        });
        let ends = match decision {
            Decision::DeniedOtherIp => {
                self.changes.denied(&data, DenyReason::OtherIp, now);
                self.let_go(chain);
                let blocking = live.into_iter().map(|w| w.blocking).collect();
                return Err(StoreError::LoginDenied(blocking));
            }
            Decision::SeatLimit => {
                self.changes.denied(&data, DenyReason::SeatLimit, now);
                // A refused login leaves no empty entry behind.
                self.let_go(chain);
                return Err(StoreError::SeatLimit {
                    organisation: data.organisation.clone(),
                    limit: rules.seats.unwrap_or_default(),
                });
            }
            Decision::Admitted { ends, .. } => ends,
        };
        let ended = ends
            .into_iter()
            .map(|(i, reason)| (self.end_linked(&mut chain, live[i].at, reason, now), reason))
            .collect();
        let session = self.store_new(&mut chain, data, digest, now);
        drop(chain);
        Ok(Created { session, ended })
    }

    /// The user's live sessions, as a login weighs them; expired ones end now.
    fn weigh(&self, chain: &mut HeldUser<'_>, data: &SessionData, now: Millis) -> Vec<Weighed> {
        let mut live = Vec::new();
        for at in self.chain(chain) {
            let found = {
                let rows = self.shard(at.shard());
                let row = rows.row(at.slot());
                self.live(row, now).then(|| Weighed {
                    at,
                    blocking: BlockingSession {
                        id: row.id(),
                        ip_address: row.ip_address,
                        server_name: rows.labels.get(row.server_name).clone(),
                        organisation: rows.labels.get(row.organisation).clone(),
                        holds_admin: rows.holds_admin(row),
                    },
                    live: LiveSession {
                        ip_address: row.ip_address,
                        last_active_at: row.last_active_at(),
                        in_organisation: **rows.labels.get(row.organisation) == *data.organisation,
                    },
                })
            };
            match found {
                Some(weighed) => live.push(weighed),
                None => {
                    self.end_linked(chain, at, EndReason::Expired, now);
                }
            }
        }
        live
    }

    /// Stores the new session and says so, while the user's entry is held: no end of this
    /// session can be said before its creation.
    fn store_new(
        &self,
        chain: &mut UserChain,
        data: SessionData,
        digest: crate::domain::TokenDigest,
        now: Millis,
    ) -> SessionRecord {
        self.link(chain, &data, digest, now);
        let session = SessionRecord::new(data, now, self.max_lifetime_seconds);
        self.changes.created(&session, &digest, now);
        session
    }
}
