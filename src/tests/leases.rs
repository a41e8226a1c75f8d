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
        5 => (1u64..30, 1u64..300, 0u8..40).prop_map(|(max, lease, token)| Op::Acquire { max, lease, token }),
        2 => (0u8..40).prop_map(|token| Op::Release { token }),
    ]
}

/// Tokens of different lengths (1 to 128 bytes), so slots get widened.
fn token(t: u8) -> Vec<u8> {
    let len = [1usize, 2, 5, 16, 36, 64, 100, 127, 128][t as usize % 9];
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

/// A hit beside leases keeps the key alive until the last lease ends (a
/// fuzz finding: the hit's expiry counted only the limits it wrote).
#[test]
fn a_hit_beside_leases_keeps_them_alive() {
    use crate::args::{Command, parse_request};
    let now = T0;
    let mut value = Vec::new();
    let mut t = Tracked::new(&mut value);
    let lease_end = now + 60_000;
    let a = engine::acquire(&mut t, 3, 60_000, b"job", now).unwrap();
    assert_eq!(a.expiry, Some(lease_end));
    let req = parse_request(Command::Hit, b"5/1s", &[]).unwrap();
    let (_, mut plan) = engine::decide(Some(&value), &req, now + 10).unwrap();
    let mut t = Tracked::new(&mut value);
    let expire_at = engine::commit(
        &mut t,
        &mut plan,
        &req,
        now + 10,
        engine::Bounds::with_log(1 << 20),
    )
    .unwrap();
    assert_eq!(expire_at, lease_end);
    assert_eq!(engine::expiry(&value, now + 10).unwrap(), Some(lease_end));
}

/// A refund on a flat log whose header claims more usage than its entries
/// hold (a value rewritten by hand) is WRONGTYPE, not a panic (a fuzz
/// finding).
#[test]
fn a_refund_on_a_log_that_lies_about_its_usage_is_corrupt() {
    use crate::args::{Command, parse_request};
    let opts: [&[u8]; 2] = [b"STRATEGY", b"moving"];
    let req = parse_request(Command::Hit, b"100/1s", &opts).unwrap();
    let mut value = Vec::new();
    for i in 0..3 {
        engine::hit_vec(&mut value, &req, T0 + i, engine::Bounds::with_log(1 << 20)).unwrap();
    }
    // The flat header's `used` (4 bytes after tag and window varint).
    let at = 1 + crate::codec::varint_len(1000);
    value[at] += 5;
    let refund_opts: [&[u8]; 4] = [b"STRATEGY", b"moving", b"COST", b"4"];
    let refund = parse_request(Command::Refund, b"100/1s", &refund_opts).unwrap();
    let before = value.clone();
    let mut t = Tracked::new(&mut value);
    assert_eq!(
        engine::refund(&mut t, &refund, T0 + 3),
        Err(engine::EngineError::NotState)
    );
    assert_eq!(value, before);
}
