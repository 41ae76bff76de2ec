//! `--demo`: sample sessions that show the Session Management screen at once, and an
//! administrator session to look at them with.

use std::net::IpAddr;

use crate::domain::{ConcurrentSessions, Millis, NewSession, NewSessionRequest, Token};
use crate::service::Sessions;
use crate::store::{Insert, SessionStore, StoreError};

struct Sample {
    user_id: &'static str,
    name: &'static str,
    organisation: &'static str,
    ip: &'static str,
    server: &'static str,
    timeout: u32,
    /// How long ago the session started, in seconds.
    age: u64,
}

const fn sample(
    user_id: &'static str,
    name: &'static str,
    organisation: &'static str,
    ip: &'static str,
    server: &'static str,
    timeout: u32,
    age: u64,
) -> Sample {
    Sample {
        user_id,
        name,
        organisation,
        ip,
        server,
        timeout,
        age,
    }
}

const SAMPLES: &[Sample] = &[
    sample(
        "tpringle",
        "Teresa Pringle",
        "Default",
        "59.100.242.122",
        "LOCAL",
        1800,
        53,
    ),
    sample(
        "mwebb",
        "Marcus Webb",
        "Default",
        "203.0.113.45",
        "APP-01",
        1800,
        1_210,
    ),
    sample(
        "lchen",
        "Lena Chen",
        "Default",
        "198.51.100.17",
        "APP-02",
        3600,
        2_745,
    ),
    sample(
        "okafor",
        "Chidi Okafor",
        "Acme Corp",
        "192.0.2.88",
        "APP-01",
        1800,
        412,
    ),
    sample(
        "jsilva",
        "João Silva",
        "Acme Corp",
        "2001:db8:85a3::8a2e:370:7334",
        "APP-03",
        7200,
        5_405,
    ),
    sample(
        "akowalski",
        "Anna Kowalski",
        "Acme Corp",
        "203.0.113.201",
        "APP-02",
        1800,
        95,
    ),
    sample(
        "rpatel",
        "Ravi Patel",
        "Globex",
        "198.51.100.142",
        "APP-03",
        14_400,
        11_230,
    ),
    sample(
        "mgarcia",
        "María García",
        "Globex",
        "192.0.2.14",
        "LOCAL",
        900,
        310,
    ),
    sample(
        "hnakamura",
        "Hiro Nakamura",
        "Globex",
        "2001:db8::1f",
        "APP-01",
        1800,
        1_530,
    ),
    sample(
        "ebrown",
        "Emily Brown",
        "Initech",
        "203.0.113.9",
        "APP-02",
        3600,
        2_020,
    ),
    sample(
        "pdubois",
        "Pierre Dubois",
        "Initech",
        "198.51.100.250",
        "APP-03",
        1800,
        640,
    ),
    sample(
        "sjohansson",
        "Sara Johansson",
        "Initech",
        "192.0.2.201",
        "LOCAL",
        600,
        27,
    ),
];

fn new_session(sample: &Sample, roles: Vec<&str>) -> NewSession {
    NewSession {
        user_id: sample.user_id.into(),
        name: sample.name.into(),
        organisation: sample.organisation.into(),
        ip_address: sample
            .ip
            .parse::<IpAddr>()
            .expect("sample addresses are valid"),
        server_name: sample.server.into(),
        roles: roles.into_iter().map(Into::into).collect(),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) demo".into()),
        timeout_seconds: sample.timeout,
        device: None,
        assurance_level: 1,
        reauthenticate_by: None,
    }
}

async fn insert(
    store: &dyn SessionStore,
    session: NewSession,
    policy: ConcurrentSessions,
    at: Millis,
) -> Result<String, StoreError> {
    let token = Token::generate(store.new_session_id(&session.user_id));
    let insert = Insert {
        id: token.id(),
        digest: token.digest(),
        session,
    };
    store.create(insert, policy.into(), at).await?;
    Ok(token.expose())
}

/// Fills the store with the samples and returns the token of a new administrator session.
/// Marcus Webb's second login goes through the service, as a real one does: it is refused by
/// the policy, audited and counted.
pub async fn seed(sessions: &Sessions) -> Result<String, String> {
    let store = &**sessions.store();
    let failed = |e: StoreError| e.to_string();
    let now = Millis::now();
    for sample in SAMPLES {
        let started = Millis(now.0 - sample.age * 1000);
        insert(
            store,
            new_session(sample, vec![]),
            ConcurrentSessions::Allow,
            started,
        )
        .await
        .map_err(failed)?;
    }
    // Marcus Webb tries again from a second address and is refused, as users are.
    let again = NewSessionRequest {
        user_id: "mwebb".into(),
        name: "Marcus Webb".into(),
        organisation: Some("Default".into()),
        ip_address: "198.51.100.23".into(),
        server_name: Some("APP-02".into()),
        roles: None,
        timeout_seconds: None,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) demo".into()),
        concurrent_sessions: None,
        assurance_level: None,
    };
    match sessions
        .log_in_under(again, ConcurrentSessions::DenyOtherIp)
        .await
    {
        Err(refused) if refused.to_string().contains("already has a session") => log::info!(
            "demo: Marcus Webb's login from 198.51.100.23 was denied: he is already on from 203.0.113.45"
        ),
        Err(e) => return Err(e.to_string()),
        Ok(_) => return Err("Marcus Webb's second login was not refused".into()),
    }
    let admin = sample(
        "admin",
        "Ada Admin",
        "Default",
        "127.0.0.1",
        "LOCAL",
        3600,
        0,
    );
    insert(
        store,
        new_session(&admin, vec!["admin"]),
        ConcurrentSessions::Allow,
        now,
    )
    .await
    .map_err(failed)
}
