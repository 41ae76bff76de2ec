//! Types that parse: a value of one of these has already been checked.
//!
//! A session goes by these names, from the request that makes it to the wire:
//!
//! | type | what it is |
//! |---|---|
//! | [`NewSessionRequest`] | a login's JSON body, as sent (unchecked) |
//! | [`NewSession`] | that body parsed and checked, defaults applied |
//! | `store::Insert` | a `NewSession` with its server-made id and token digest, for a store |
//! | [`SessionData`] | what a login made (id, user, names, address, device, timeout, created, authentication) |
//! | [`SessionRecord`] | `SessionData` read out of a store at one instant: with last activity and expiry |
//! | [`SavedSession`] | `SessionData` with its digest and last activity, as the data directory and a replica keep it |
//! | `store::Created` | what a store's login returns: the new `SessionRecord` and the sessions it ended |
//! | `service::LoggedIn` | a login that succeeded: `Created` with the token, shown once |
//! | [`Session`] | a session as the API shows it (JSON) |
//! | `events::CreatedSession` | a created session as its event keeps it (texts inline) |
//! | `routes::sessions::CreatedSession` | the `201` body: the `Session`, its token and what ended |

pub mod assurance;
pub mod clock;
pub mod device;
pub mod id;
pub mod limits;
pub mod listing;
pub mod login;
pub mod new_session;
pub mod policy;
pub mod renewal;
pub mod session;
pub mod text;
pub mod token;

pub use assurance::AssuranceTimeouts;
pub use clock::Millis;
pub use device::{Device, DeviceKind};
pub use id::SessionId;
pub use listing::{Filters, ListQuery, Order, Position, SortField, SortKey};
pub use login::LoginRules;
pub use new_session::{NewSession, NewSessionRequest};
pub use policy::ConcurrentSessions;
pub use renewal::{Amendment, Authentication};
pub use session::{EndReason, SavedSession, Scope, Session, SessionData, SessionRecord, Stopped};
pub use token::{PresentedToken, Token, TokenDigest};
