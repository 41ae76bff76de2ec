//! Who is calling: extractors that authenticate a request before its handler runs, so a
//! handler's signature states what its caller must be.
//!
//! - [`ServiceCaller`]: an app server holding a service key.
//! - [`Caller`]: a session holder; extracting it validates and touches the session.
//! - [`Holder`]: any session holder, with what its roles let it reach of other sessions.
//! - [`AdminCaller`]: a session holder with role `admin` (every organisation) or `org_admin`
//!   (its own organisation), and the [`Scope`] that role grants.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::domain::session::Privilege;
use crate::domain::{Millis, PresentedToken, Scope, SessionData, SessionId, SessionRecord};
use crate::error::{ApiError, Challenge, Code};
use crate::service::{Acting, Reach};
use crate::state::AppState;

pub const SERVICE_KEY_HEADER: &str = "X-Service-Key";

/// The caller's session id, left in the request's extensions by the authenticating extractor
/// for the access log. The id grants nothing, so it may be logged; the token never is.
#[derive(Clone, Copy)]
pub struct CallerSession(pub SessionId);

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::new(Code::Internal, "the application state is missing"))
}

/// An app server that presented a valid `X-Service-Key`.
pub struct ServiceCaller;

impl FromRequest for ServiceCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            state(req).and_then(|state| match req.headers().get(SERVICE_KEY_HEADER) {
                None => Err(ApiError::unauthorized(
                    Challenge::ServiceKey,
                    "this operation needs an X-Service-Key header",
                )),
                Some(key) if state.service_keys.accepts(key.as_bytes()) => Ok(ServiceCaller),
                Some(_) => Err(ApiError::unauthorized(
                    Challenge::ServiceKey,
                    "the X-Service-Key is not valid",
                )),
            }),
        )
    }
}

/// A session holder whose bearer token names a live session. Extracting it counts as activity
/// of that session.
pub struct Caller {
    pub session: SessionRecord,
    pub now: Millis,
    /// The token as presented: its session, and the digest of its secret.
    pub token: PresentedToken,
}

impl Caller {
    pub fn id(&self) -> SessionId {
        self.session.data.id
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is case-insensitive.
fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            Challenge::Bearer,
            "this operation needs an Authorization: Bearer <token> header",
        )
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    Ok(token.trim())
}

fn invalid_token() -> ApiError {
    ApiError::invalid_token()
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        let found = state(&req).and_then(|state| {
            let token = PresentedToken::parse(bearer_token(&req)?).ok_or_else(invalid_token)?;
            Ok((state, token))
        });
        Box::pin(async move {
            let (state, token) = found?;
            let now = Millis::now();
            match state.sessions.authenticate(&token, now).await? {
                Some(session) => {
                    req.extensions_mut().insert(CallerSession(session.data.id));
                    Ok(Caller {
                        session,
                        now,
                        token,
                    })
                }
                None => Err(match state.sessions.why_stopped(&token, now).await? {
                    Some(reason) => ApiError::stopped_token(reason),
                    None => invalid_token(),
                }),
            }
        })
    }
}

/// What a session holder's roles let it reach of other sessions: `admin` every session,
/// `org_admin` its organisation's, anyone else its own user's.
fn reach_of(data: &SessionData) -> Reach {
    match Privilege::of(&data.roles) {
        Privilege::Admin => Reach::Administers(Scope::All),
        Privilege::OrgAdmin => Reach::Administers(Scope::Organisation(data.organisation.clone())),
        Privilege::None => Reach::OwnUser,
    }
}

/// Any session holder, with what it may reach of other sessions.
pub struct Holder {
    pub caller: Caller,
    pub reach: Reach,
}

impl FromRequest for Holder {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            let reach = reach_of(&caller.session.data);
            Ok(Holder { caller, reach })
        })
    }
}

impl Holder {
    /// The holder, as the session service sees one acting.
    pub fn acting(&self) -> Acting<'_> {
        acting(&self.caller, &self.reach)
    }
}

fn acting<'a>(caller: &'a Caller, reach: &'a Reach) -> Acting<'a> {
    Acting {
        caller: &caller.session.data,
        reach,
        now: caller.now,
    }
}

/// A session holder allowed to list and end other sessions, within [`AdminCaller::scope`].
pub struct AdminCaller {
    pub caller: Caller,
    reach: Reach,
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let holder = Holder::from_request(req, payload);
        Box::pin(async move {
            let Holder { caller, reach } = holder.await?;
            if reach == Reach::OwnUser {
                return Err(ApiError::new(
                    Code::Forbidden,
                    "this operation needs a session with role admin or org_admin",
                ));
            }
            Ok(AdminCaller { caller, reach })
        })
    }
}

impl AdminCaller {
    /// Which sessions this administrator may see and end.
    pub fn scope(&self) -> &Scope {
        match &self.reach {
            Reach::Administers(scope) => scope,
            Reach::OwnUser => unreachable!("an AdminCaller administers"),
        }
    }

    /// The administrator, as the session service sees one acting.
    pub fn acting(&self) -> Acting<'_> {
        acting(&self.caller, &self.reach)
    }
}

/// Who may end every session of a user: an app server (its service key: the account was
/// disabled, or its password changed), or an administrator, within its scope.
pub enum UserAuthority {
    App,
    Admin(Box<AdminCaller>),
}

impl FromRequest for UserAuthority {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if req.headers().contains_key(SERVICE_KEY_HEADER) {
            let app = ServiceCaller::from_request(req, payload);
            Box::pin(async move { app.await.map(|_| UserAuthority::App) })
        } else {
            let admin = AdminCaller::from_request(req, payload);
            Box::pin(async move { admin.await.map(|a| UserAuthority::Admin(Box::new(a))) })
        }
    }
}

impl UserAuthority {
    /// Which sessions it may end.
    pub fn scope(&self) -> &Scope {
        match self {
            UserAuthority::App => &Scope::All,
            UserAuthority::Admin(admin) => admin.scope(),
        }
    }

    /// The administrator's session; none for an app server.
    pub fn session(&self) -> Option<&SessionData> {
        match self {
            UserAuthority::App => None,
            UserAuthority::Admin(admin) => Some(&admin.caller.session.data),
        }
    }
}
