//! redis-ratelimit: atomic, server-side rate limiting as a Redis module.
//!
//! The crate is split into a pure core (grammar, strategies, state encoding,
//! engine), which knows nothing of Redis and is tested without a server, and
//! a thin module layer (`module`) that parses, reads the clock once, opens
//! the key, calls the engine, writes in place, replicates and replies.

pub mod args;
pub mod buf;
pub mod codec;
pub mod decision;
pub mod engine;
pub mod limit;
pub mod penalty;
pub mod record;
pub mod strategy;

#[cfg(all(feature = "module", not(test)))]
mod module;

#[cfg(test)]
mod tests;
