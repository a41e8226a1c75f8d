//! What one limit says about a hit, and how the answers of several limits
//! combine into the five-integer reply.

/// The verdict of one limit on one hit. For an admitted hit `remaining` and
/// `reset_after` describe the state after it; for a denied one, the state as
/// it is (nothing is consumed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitEval {
    pub allowed: bool,
    /// The limit's amount (the burst for GCRA).
    pub limit: u64,
    pub remaining: u64,
    pub reset_after: u64,
    /// 0 when admitted, -1 when the hit can never pass, else ms to wait.
    pub retry_after: i64,
}

/// A hit's verdict over all its limits: what RL.HIT and RL.TEST reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_after: u64,
    pub retry_after: i64,
}

impl Verdict {
    /// The five integers in wire order.
    pub fn to_array(self) -> [i64; 5] {
        [
            i64::from(self.allowed),
            self.limit as i64,
            self.remaining as i64,
            self.reset_after as i64,
            self.retry_after,
        ]
    }
}

impl From<LimitEval> for Verdict {
    /// The reply when one limit decides alone (what [`combine`] gives for it).
    fn from(e: LimitEval) -> Verdict {
        Verdict {
            allowed: e.allowed,
            limit: e.limit,
            remaining: e.remaining,
            reset_after: e.reset_after,
            retry_after: if e.allowed { 0 } else { e.retry_after },
        }
    }
}

/// Orders retry times so that "never" (-1) is the longest wait.
fn wait_rank(retry_after: i64) -> u64 {
    if retry_after < 0 {
        u64::MAX
    } else {
        retry_after as u64
    }
}

/// Combines the limits' verdicts, all-or-nothing. The binding limit is, when
/// denied, the denying limit with the longest wait; when admitted, the one
/// with the fewest remaining; ties go to the limit written first.
pub fn combine(evals: impl Iterator<Item = LimitEval>) -> Option<Verdict> {
    let mut best_denied: Option<LimitEval> = None;
    let mut best_allowed: Option<LimitEval> = None;
    for e in evals {
        if e.allowed {
            if best_allowed.is_none_or(|b| e.remaining < b.remaining) {
                best_allowed = Some(e);
            }
        } else if best_denied.is_none_or(|b| wait_rank(e.retry_after) > wait_rank(b.retry_after)) {
            best_denied = Some(e);
        }
    }
    let e = best_denied.or(best_allowed)?;
    Some(Verdict {
        allowed: best_denied.is_none(),
        limit: e.limit,
        remaining: e.remaining,
        reset_after: e.reset_after,
        retry_after: if best_denied.is_some() {
            e.retry_after
        } else {
            0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(allowed: bool, limit: u64, remaining: u64, retry: i64) -> LimitEval {
        LimitEval {
            allowed,
            limit,
            remaining,
            reset_after: limit * 10,
            retry_after: retry,
        }
    }

    #[test]
    fn binding_rules() {
        let r = combine([ev(true, 10, 5, 0), ev(true, 20, 3, 0), ev(true, 30, 3, 0)].into_iter())
            .unwrap();
        assert_eq!((r.allowed, r.limit, r.remaining), (true, 20, 3));
        let r = combine([ev(true, 10, 5, 0), ev(false, 20, 0, 7), ev(false, 30, 0, 9)].into_iter())
            .unwrap();
        assert_eq!((r.allowed, r.limit, r.retry_after), (false, 30, 9));
        let r = combine(
            [
                ev(false, 10, 0, 9),
                ev(false, 20, 0, -1),
                ev(false, 30, 0, -1),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!((r.allowed, r.limit, r.retry_after), (false, 20, -1));
        let r = combine([ev(false, 10, 0, 9), ev(false, 20, 0, 9)].into_iter()).unwrap();
        assert_eq!(r.limit, 10);
        assert!(combine(std::iter::empty()).is_none());
    }
}
