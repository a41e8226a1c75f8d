//! redis-ratelimit: atomic, server-side rate limiting as a Redis module.
//!
//! The crate is split into a pure core (grammar, strategies, state encoding,
//! engine), which knows nothing of Redis and is tested without a server, and
//! a thin module layer (`module`) that parses, reads the clock once, opens
//! the key, calls the engine, writes in place, replicates and replies. The
//! core is private to the crate; [`surface`] is what the fuzz targets drive.
// Built without the module glue (the fuzz build, unit tests), the core's
// items that only the glue calls are unused: expected there. The module
// build keeps the check.
#![cfg_attr(any(test, not(feature = "module")), allow(dead_code))]

mod args;
mod buf;
mod codec;
mod decision;
mod engine;
mod lease;
mod limit;
mod penalty;
mod record;
mod strategy;

pub mod surface;

#[cfg(all(feature = "module", not(test)))]
mod module;

#[cfg(test)]
mod tests;
