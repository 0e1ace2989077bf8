//! The power-cut tests' workload and its model, shared by the blocking
//! (`power_cut.rs`) and async (`power_cut_async.rs`) runs so both cut the
//! same history.

use std::collections::BTreeMap;

use cssf_store::RootKey;

/// What the store should hold.
pub(crate) type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One operation of the workload.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Tx(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

pub(crate) const KEYS: [&[u8]; 6] = [b"psk/a", b"psk/b", b"tok/1", b"tok/2", b"key", b"x"];
pub(crate) const ROOT: RootKey = RootKey([0x5A; 32]);

/// 36 sets, removes and 3-key transactions (values up to `max_val` bytes).
pub(crate) fn workload(max_val: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut r = 12345u64;
    let mut rnd = || {
        r = r
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (r >> 33) as usize
    };
    for i in 0..36 {
        let k = KEYS[rnd() % KEYS.len()].to_vec();
        let v: Vec<u8> = (0..(rnd() % max_val)).map(|j| (i * 7 + j) as u8).collect();
        ops.push(match i % 6 {
            2 => Op::Remove(k),
            4 => Op::Tx(vec![
                (KEYS[rnd() % 3].to_vec(), Some(v.clone())),
                (
                    KEYS[3 + rnd() % 3].to_vec(),
                    if rnd() % 2 == 0 {
                        None
                    } else {
                        Some(vec![i as u8; 5])
                    },
                ),
                (KEYS[rnd() % 6].to_vec(), Some(vec![0xA0 | i as u8; 9])),
            ]),
            _ => Op::Set(k, v),
        });
    }
    ops
}

/// Applies `op` to the model.
pub(crate) fn apply_model(m: &mut Model, op: &Op) {
    match op {
        Op::Set(k, v) => {
            m.insert(k.clone(), v.clone());
        }
        Op::Remove(k) => {
            m.remove(k);
        }
        Op::Tx(ops) => {
            for (k, v) in ops {
                match v {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
    }
}
