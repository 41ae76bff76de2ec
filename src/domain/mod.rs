//! Types that parse: a value of one of these has already been checked.

pub mod clock;
pub mod id;
pub mod limits;
pub mod listing;
pub mod login;
pub mod new_session;
pub mod policy;
pub mod session;
pub mod text;
pub mod token;

pub use clock::Millis;
pub use id::SessionId;
pub use listing::{Filters, ListQuery, Order, Position, SortField, SortKey};
pub use login::LoginRules;
pub use new_session::{NewSession, NewSessionRequest};
pub use policy::ConcurrentSessions;
pub use session::{EndReason, SavedSession, Scope, Session, SessionData, SessionRecord};
pub use token::{PresentedToken, Token, TokenDigest};
