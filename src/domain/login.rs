//! The login decision: what a login does given the user's live sessions, written once. The
//! memory store calls [`decide`]; the Redis store's `create.lua` carries the same steps in Lua
//! and is tested against this function on a real Redis (the store contract suite).

use std::net::IpAddr;
use std::sync::Arc;

use super::{ConcurrentSessions, EndReason, Millis, SessionId};

/// How a login treats the user's other sessions: the concurrent-session policy, then the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRules {
    pub policy: ConcurrentSessions,
    /// The most live sessions a user may have; a login beyond it ends the user's least
    /// recently active ones. 0: no limit.
    pub max_per_user: u32,
    /// The seats of the login's organisation, if it has a limit: how many distinct users may
    /// have live sessions there at once.
    pub seats: Option<u32>,
}

impl From<ConcurrentSessions> for LoginRules {
    fn from(policy: ConcurrentSessions) -> Self {
        LoginRules {
            policy,
            max_per_user: 0,
            seats: None,
        }
    }
}

/// One of a user's live sessions that blocked a login under `deny-other-ip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockingSession {
    pub id: SessionId,
    pub ip_address: IpAddr,
    pub server_name: Arc<str>,
    /// Where it is, so that the audit trail shows it only to administrators who may see it
    /// (it may be in another organisation than the login it blocked).
    pub organisation: Arc<str>,
    pub holds_admin: bool,
}

/// One of the user's live sessions, as a login weighs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveSession {
    pub ip_address: IpAddr,
    pub last_active_at: Millis,
    /// Whether it is in the login's organisation (then the user already holds a seat there).
    pub in_organisation: bool,
}

/// What a login does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Refused by `deny-other-ip`: a live session comes from another address.
    DeniedOtherIp,
    /// Refused: the user is new to an organisation whose seats are all taken.
    SeatLimit,
    /// Goes through, ending the live sessions at these positions (of the slice weighed), each
    /// for its reason, in order.
    Admitted {
        /// Whether the user takes a seat in the organisation (new to a limited one).
        takes_seat: bool,
        ends: Vec<(usize, EndReason)>,
    },
}

/// Decides a login from `ip_address` of a user whose live sessions are `live`:
/// 1. `deny-other-ip` refuses if any live session has another address;
/// 2. a user new to a limited organisation needs a free seat — `seats_full` is asked only then
///    (counting seats costs the store work);
/// 3. `replace` ends every live session;
/// 4. beyond `max_per_user`, the least recently active sessions end to make room.
pub fn decide(
    rules: &LoginRules,
    ip_address: IpAddr,
    live: &[LiveSession],
    seats_full: impl FnOnce() -> bool,
) -> Decision {
    if rules.policy == ConcurrentSessions::DenyOtherIp
        && live.iter().any(|s| s.ip_address != ip_address)
    {
        return Decision::DeniedOtherIp;
    }
    let takes_seat = rules.seats.is_some() && !live.iter().any(|s| s.in_organisation);
    if takes_seat && seats_full() {
        return Decision::SeatLimit;
    }
    let mut ends = Vec::new();
    let mut remaining: Vec<usize> = (0..live.len()).collect();
    if rules.policy == ConcurrentSessions::Replace {
        ends.extend(remaining.drain(..).map(|i| (i, EndReason::Replaced)));
    }
    let limit = rules.max_per_user as usize;
    if limit > 0 && remaining.len() >= limit {
        // Stable, so equal activity ends the earlier-weighed session first.
        remaining.sort_by_key(|&i| live[i].last_active_at);
        let excess = remaining.len() - limit + 1;
        ends.extend(remaining[..excess].iter().map(|&i| (i, EndReason::Evicted)));
    }
    Decision::Admitted { takes_seat, ends }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str, active: u64, here: bool) -> LiveSession {
        LiveSession {
            ip_address: ip.parse().unwrap(),
            last_active_at: Millis(active),
            in_organisation: here,
        }
    }

    fn rules(policy: ConcurrentSessions, max_per_user: u32, seats: Option<u32>) -> LoginRules {
        LoginRules {
            policy,
            max_per_user,
            seats,
        }
    }

    const IP: &str = "10.0.0.1";

    #[test]
    fn another_address_is_refused_only_under_deny_other_ip() {
        let live = [at(IP, 1, true), at("10.0.0.2", 2, true)];
        let ip = IP.parse().unwrap();
        let deny = rules(ConcurrentSessions::DenyOtherIp, 0, None);
        assert_eq!(decide(&deny, ip, &live, || false), Decision::DeniedOtherIp);
        let allow = rules(ConcurrentSessions::Allow, 0, None);
        assert_eq!(
            decide(&allow, ip, &live, || false),
            Decision::Admitted {
                takes_seat: false,
                ends: vec![]
            }
        );
    }

    #[test]
    fn the_policy_is_decided_before_the_seats() {
        let live = [at("10.0.0.2", 1, false)];
        let deny = rules(ConcurrentSessions::DenyOtherIp, 0, Some(1));
        let decision = decide(&deny, IP.parse().unwrap(), &live, || {
            panic!("seats are not counted for a login the policy refuses")
        });
        assert_eq!(decision, Decision::DeniedOtherIp);
    }

    #[test]
    fn only_a_user_new_to_a_limited_organisation_takes_a_seat() {
        let ip = IP.parse().unwrap();
        let limited = rules(ConcurrentSessions::Allow, 0, Some(1));
        assert_eq!(decide(&limited, ip, &[], || true), Decision::SeatLimit);
        let seated = [at(IP, 1, true)];
        assert_eq!(
            decide(&limited, ip, &seated, || panic!("already seated")),
            Decision::Admitted {
                takes_seat: false,
                ends: vec![]
            }
        );
        let elsewhere = [at(IP, 1, false)];
        assert_eq!(
            decide(&limited, ip, &elsewhere, || false),
            Decision::Admitted {
                takes_seat: true,
                ends: vec![]
            }
        );
    }

    #[test]
    fn replace_ends_every_live_session() {
        let live = [at(IP, 1, true), at("10.0.0.2", 2, false)];
        let replace = rules(ConcurrentSessions::Replace, 1, None);
        assert_eq!(
            decide(&replace, IP.parse().unwrap(), &live, || false),
            Decision::Admitted {
                takes_seat: false,
                ends: vec![(0, EndReason::Replaced), (1, EndReason::Replaced)]
            }
        );
    }

    #[test]
    fn the_limit_evicts_the_least_recently_active() {
        let live = [at(IP, 30, true), at(IP, 10, true), at(IP, 20, true)];
        let limited = rules(ConcurrentSessions::Allow, 2, None);
        assert_eq!(
            decide(&limited, IP.parse().unwrap(), &live, || false),
            Decision::Admitted {
                takes_seat: false,
                ends: vec![(1, EndReason::Evicted), (2, EndReason::Evicted)]
            }
        );
    }
}
