//! Leases against a model: a map token -> end time, over random acquires
//! (changing `max` and lease length), renewals, releases and time steps.
//! Every reply, every value's decoding and expiry, and that a denied
//! acquire or a release that ends nothing leaves the bytes as they were.

use proptest::prelude::*;
use std::collections::BTreeMap;

use crate::buf::Tracked;
use crate::engine::{self, Written};

const T0: u64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
enum Op {
    Wait(u64),
    Acquire { max: u64, lease: u64, token: u8 },
    Release { token: u8 },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        2 => (0u64..120).prop_map(Op::Wait),
        5 => (1u64..6, 1u64..300, 0u8..9).prop_map(|(max, lease, token)| Op::Acquire { max, lease, token }),
        2 => (0u8..9).prop_map(|token| Op::Release { token }),
    ]
}

/// Tokens of different lengths (1 to 128 bytes), so slots get widened.
fn token(t: u8) -> Vec<u8> {
    let len = [1usize, 2, 5, 16, 36, 64, 100, 127, 128][t as usize];
    (0..len)
        .map(|i| t.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut value: Vec<u8> = Vec::new();
    let mut expire_at = 0;
    let mut now = T0;
    for op in ops {
        if !value.is_empty() && now >= expire_at {
            value.clear(); // Redis expired the key
        }
        model.retain(|_, end| *end > now);
        match op {
            Op::Wait(dt) => now += dt,
            Op::Acquire {
                max,
                lease,
                token: t,
            } => {
                let tok = token(t);
                let live = model.len() as u64;
                let mine = model.contains_key(&tok);
                let granted = mine || live < max;
                if granted {
                    model.insert(tok.clone(), now + lease);
                }
                let held = model.len() as u64;
                let latest = model.values().max().map_or(0, |e| e - now);
                let earliest = model.values().min().map_or(0, |e| e - now);
                let want = [
                    i64::from(granted),
                    max as i64,
                    if granted {
                        max.saturating_sub(held) as i64
                    } else {
                        0
                    },
                    latest as i64,
                    if granted { 0 } else { earliest as i64 },
                ];
                let before = value.clone();
                let mut tr = Tracked::new(&mut value);
                let engine::Acquired { grant, expiry, .. } =
                    engine::acquire(&mut tr, max, lease, &tok, now).unwrap();
                prop_assert_eq!(
                    grant.to_array(),
                    want,
                    "acquire {} at +{}",
                    t_name(t),
                    now - T0
                );
                match expiry {
                    None => prop_assert_eq!(&value, &before, "a denied acquire wrote"),
                    Some(e) => {
                        prop_assert_eq!(Some(e), model.values().max().copied());
                        prop_assert_eq!(engine::expiry(&value, now).unwrap(), Some(e));
                        expire_at = e;
                    }
                }
            }
            Op::Release { token: t } => {
                let tok = token(t);
                let live = model.remove(&tok).is_some();
                let before = value.clone();
                if value.is_empty() {
                    prop_assert!(!live);
                    continue;
                }
                let mut t2 = Tracked::new(&mut value);
                let (ended, left) = engine::release(&mut t2, &tok, now).unwrap();
                prop_assert_eq!(ended, live, "release {} at +{}", t_name(t), now - T0);
                match left {
                    Written::Unchanged => prop_assert_eq!(&value, &before),
                    Written::Emptied => {
                        prop_assert!(model.is_empty());
                        value.clear();
                    }
                    Written::Changed(e) => {
                        prop_assert_eq!(Some(e), model.values().max().copied());
                        expire_at = e;
                    }
                }
            }
        }
        if !value.is_empty() {
            prop_assert!(
                crate::record::index(&value).is_ok(),
                "value does not decode"
            );
        }
    }
    Ok(())
}

fn t_name(t: u8) -> String {
    format!("token {t}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn leases_match_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}
