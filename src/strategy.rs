//! The strategy names a client may ask for.

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

    /// Accepts the canonical names and their aliases, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<Strategy> {
        const NAMES: [(&[u8], Strategy); 8] = [
            (b"fixed-window", Strategy::FixedWindow),
            (b"fixed", Strategy::FixedWindow),
            (b"moving-window", Strategy::MovingWindow),
            (b"moving", Strategy::MovingWindow),
            (b"sliding-window-counter", Strategy::SlidingWindowCounter),
            (b"sliding", Strategy::SlidingWindowCounter),
            (b"gcra", Strategy::Gcra),
            (b"token-bucket", Strategy::Gcra),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
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
