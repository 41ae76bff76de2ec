//! What the memory store keeps in its data directory: snapshots and the journal of changes
//! since the last one, with the one encoding of a session both use.

pub mod codec;
pub mod frames;
pub mod journal;
pub mod snapshot;
