//! Property tests of the whole core (engine, records and strategies
//! together) against reference models, without a server. Tests of one
//! part sit next to it (`#[cfg(test)] mod tests`).

mod clock;
mod leases;
mod model;
