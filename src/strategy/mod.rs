//! The strategies: their names, and the kinds of stored state behind them
//! (one file each).

pub mod fixed;
pub mod gcra;
pub mod kind;
pub mod moving;
pub mod sliding;

use crate::buf::{Tracked, ValueBuf};
use crate::decision::LimitEval;
use crate::record::Record;
pub use kind::{Corrupt, Kind, Quota, Rewrite};

/// The registry: each strategy and the [`Kind`] that keeps its state. It
/// makes the enums of any kind's state ([`State`]) and judged write
/// ([`Next`]), and the dispatch from a strategy to its kind; adding a kind
/// is its file and one line here.
macro_rules! kinds {
    ($($strategy:ident => $kind:ty),* $(,)?) => {
        /// The decoded state of one record, of any kind.
        #[derive(Clone, Copy, Debug)]
        pub enum State<'a> {
            $($strategy(<$kind as Kind>::State<'a>),)*
        }

        /// What judging an admitted hit computed for its write, any kind.
        #[derive(Clone, Copy, Debug)]
        pub enum Next {
            $($strategy(<$kind as Kind>::Next),)*
        }

        /// The tag new records of `strategy` get.
        #[inline(always)]
        pub fn tag(strategy: Strategy) -> u8 {
            match strategy {
                $(Strategy::$strategy => <$kind as Kind>::TAGS[0],)*
            }
        }

        /// Whether `strategy`'s state grows with use (see [`Kind::GROWS`]).
        pub fn grows(strategy: Strategy) -> bool {
            match strategy {
                $(Strategy::$strategy => <$kind as Kind>::GROWS,)*
            }
        }

        /// Whether records of `strategy` may carry `tag`.
        #[inline(always)]
        pub fn has_tag(strategy: Strategy, tag: u8) -> bool {
            match strategy {
                $(Strategy::$strategy => <$kind as Kind>::TAGS.contains(&tag),)*
            }
        }

        /// The strategy whose records carry `tag`, if any.
        pub fn strategy_of(tag: u8) -> Option<Strategy> {
            $(if <$kind as Kind>::TAGS.contains(&tag) {
                return Some(Strategy::$strategy);
            })*
            None
        }

        /// Decodes a record body of `strategy` tagged `tag` at the start of
        /// `body`: the state and the body's length.
        #[inline(always)]
        pub fn decode(strategy: Strategy, tag: u8, body: &[u8]) -> Option<(State<'_>, usize)> {
            match strategy {
                $(Strategy::$strategy => {
                    <$kind as Kind>::decode(tag, body).map(|(s, n)| (State::$strategy(s), n))
                })*
            }
        }

        /// Decodes a record body of `strategy` tagged `tag` that is exactly
        /// `body` (nothing after it).
        #[inline(always)]
        pub fn decode_whole(strategy: Strategy, tag: u8, body: &[u8]) -> Option<State<'_>> {
            match strategy {
                $(Strategy::$strategy => match <$kind as Kind>::decode(tag, body) {
                    Some((s, n)) if n == body.len() => Some(State::$strategy(s)),
                    _ => None,
                },)*
            }
        }

        /// A hit's verdict under `strategy` (see [`Kind::judge`]).
        #[inline(always)]
        pub fn judge(
            strategy: Strategy,
            state: Option<State<'_>>,
            quota: Quota,
            cost: u64,
            now: u64,
        ) -> Result<(LimitEval, Option<Next>), Corrupt> {
            match strategy {
                $(Strategy::$strategy => {
                    let state = match state {
                        Some(State::$strategy(s)) => Some(s),
                        _ => None,
                    };
                    let (eval, next) = <$kind as Kind>::judge(state, quota, cost, now)?;
                    Ok((eval, next.map(Next::$strategy)))
                })*
            }
        }

        /// Writes an admitted hit (see [`Kind::write`]).
        #[inline(always)]
        pub fn write<B: ValueBuf>(
            t: &mut Tracked<B>,
            records: &[Record],
            rec: Option<Record>,
            next: Next,
            quota: Quota,
            cost: u64,
            now: u64,
        ) -> Result<Option<u64>, Corrupt> {
            match next {
                $(Next::$strategy(n) => <$kind as Kind>::write(t, records, rec, n, quota, cost, now),)*
            }
        }

        impl State<'_> {
            /// When the usage stops counting, if any counts at `now`.
            #[inline(always)]
            pub fn usage_end(&self, window_ms: u64, now: u64) -> Option<u64> {
                match self {
                    $(State::$strategy(s) => <$kind as Kind>::usage_end(s, window_ms, now),)*
                }
            }

            /// See [`Kind::refund`].
            pub fn refund(&self, quota: Quota, cost: u64, now: u64) -> Result<Rewrite, Corrupt> {
                match self {
                    $(State::$strategy(s) => <$kind as Kind>::refund(s, quota, cost, now),)*
                }
            }

            /// See [`Kind::reclaimable`].
            pub fn reclaimable(&self, window_ms: u64, now: u64) -> Result<Option<usize>, Corrupt> {
                match self {
                    $(State::$strategy(s) => <$kind as Kind>::reclaimable(s, window_ms, now),)*
                }
            }

            /// See [`Kind::compacted`].
            pub fn compacted(&self, window_ms: u64, now: u64) -> Result<Rewrite, Corrupt> {
                match self {
                    $(State::$strategy(s) => <$kind as Kind>::compacted(s, window_ms, now),)*
                }
            }

            /// See [`Kind::would_pass`].
            pub fn would_pass(&self, window_ms: u64, now: u64, max_log_bytes: usize) -> Result<bool, Corrupt> {
                match self {
                    $(State::$strategy(s) => <$kind as Kind>::would_pass(s, window_ms, now, max_log_bytes),)*
                }
            }
        }
    };
}

kinds! {
    FixedWindow => fixed::Fixed,
    MovingWindow => moving::Moving,
    SlidingWindowCounter => sliding::Sliding,
    Gcra => gcra::Gcra,
}

/// How a limit counts usage over time; each has its own state record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    FixedWindow,
    MovingWindow,
    SlidingWindowCounter,
    Gcra,
}

impl Strategy {
    /// Every strategy, in a stable order (used by tests and docs).
    pub const ALL: [Strategy; 4] = [
        Strategy::FixedWindow,
        Strategy::MovingWindow,
        Strategy::SlidingWindowCounter,
        Strategy::Gcra,
    ];

    /// Every name a client may use, each canonical name before its alias
    /// (the `ratelimit.default-strategy` config accepts the same names and
    /// reports the first one of a strategy).
    pub const NAMES: [(&'static str, Strategy); 8] = [
        ("fixed-window", Strategy::FixedWindow),
        ("fixed", Strategy::FixedWindow),
        ("moving-window", Strategy::MovingWindow),
        ("moving", Strategy::MovingWindow),
        ("sliding-window-counter", Strategy::SlidingWindowCounter),
        ("sliding", Strategy::SlidingWindowCounter),
        ("gcra", Strategy::Gcra),
        ("token-bucket", Strategy::Gcra),
    ];

    /// Accepts the canonical names and their aliases, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<Strategy> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, s)| s)
    }

    /// The canonical name that RL.STATS reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::FixedWindow => "fixed-window",
            Strategy::MovingWindow => "moving-window",
            Strategy::SlidingWindowCounter => "sliding-window-counter",
            Strategy::Gcra => "gcra",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.name().as_bytes()), Some(s));
            assert_eq!(Strategy::parse(s.name().to_uppercase().as_bytes()), Some(s));
        }
        assert_eq!(Strategy::parse(b"Fixed"), Some(Strategy::FixedWindow));
        assert_eq!(Strategy::parse(b"MOVING"), Some(Strategy::MovingWindow));
        assert_eq!(
            Strategy::parse(b"sliding"),
            Some(Strategy::SlidingWindowCounter)
        );
        assert_eq!(Strategy::parse(b"token-bucket"), Some(Strategy::Gcra));
        assert_eq!(Strategy::parse(b"leaky"), None);
    }
}
