//! The crate's one public surface besides the Redis module itself: the
//! pure core's entry points that the fuzz targets drive (the argument
//! parser, the limit grammar, the engine on stored bytes), and nothing
//! else. Everything behind it is crate-private and may change freely.

pub use crate::args::{Command, Request, parse_acquire, parse_request, parse_token};
pub use crate::buf::Tracked;
pub use crate::codec::MAX_TIME;
pub use crate::engine::{
    Acquired, Bounds, EngineError, MAX_VALUE_LEN, Written, acquire, check, clear_limits, commit,
    decide, expiry, refund, release, stats,
};
pub use crate::limit::{MAX_AMOUNT, MAX_LIMITS, MAX_WINDOW_MS, limit_text, parse_limits};
pub use crate::record::index;
pub use crate::strategy::Strategy;
