//! The strategies: their names, and the kinds of stored state behind them
//! (one file each).

pub mod fixed;
pub mod gcra;
pub mod moving;
pub mod sliding;

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
