//! The GPU sort's two ways through its passes, each forced on whatever
//! adapter runs the tests: the onesweep passes (a scatter per pass whose
//! tiles find their digits' bases by decoupled look-back), their fallback
//! (a tile that finds a predecessor unpublished counts that tile's digits
//! itself), and the three dispatches per pass (histogram, table scan,
//! scatter) that inputs past one binding take. Each with subgroups and
//! with them masked. One test, because it sets environment variables that
//! the library reads on every sort.

mod common;

use common::Rng;
use tandem::kernels::{Argsort, Sort, SortPairs};
use tandem::{Backend, Buffer, Engine, GpuFeatures};

/// The sorted keys' bits and the stable permutation, by the documented
/// order (each element's order-preserving image; f32 by `total_cmp` on
/// the key transform: -0.0 before +0.0, every NaN last by its bits).
fn oracle_u32(keys: &[u32]) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..keys.len() as u32).collect();
    idx.sort_by_key(|&i| keys[i as usize]);
    idx
}

fn f32_key(b: u32) -> u32 {
    let s = if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    };
    s.wrapping_sub(0x007f_ffff)
}

fn f64_key(b: u64) -> u64 {
    let s = if b & (1 << 63) != 0 {
        !b
    } else {
        b | (1 << 63)
    };
    s.wrapping_sub(0x000f_ffff_ffff_ffff)
}

/// Sort, sort_pairs and argsort of `keys` on `e` against the stable
/// permutation `want`.
fn check<T: tandem::Element + Copy>(
    e: &Engine,
    what: &str,
    keys: &[T],
    want: &[u32],
    bits: impl Fn(T) -> u64,
) {
    let n = keys.len();
    let kb = Buffer::from(keys.to_vec());
    let sorted = e.run(&Sort, &kb).expect("sort").to_vec().expect("host");
    let want_bits: Vec<u64> = want.iter().map(|&i| bits(keys[i as usize])).collect();
    let got_bits: Vec<u64> = sorted.iter().map(|&k| bits(k)).collect();
    assert!(got_bits == want_bits, "{what}: sort n={n}");
    let idx = e
        .run(&Argsort, &kb)
        .expect("argsort")
        .to_vec()
        .expect("host");
    assert!(idx == want, "{what}: argsort n={n}");
    let vals: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
    let (sk, sv) = e
        .run(&SortPairs, (&kb, &Buffer::from(vals.clone())))
        .expect("sort_pairs");
    let sk: Vec<u64> = sk
        .to_vec()
        .expect("host")
        .iter()
        .map(|&k| bits(k))
        .collect();
    assert!(sk == want_bits, "{what}: sort_pairs keys n={n}");
    let want_vals: Vec<u32> = want.iter().map(|&i| vals[i as usize]).collect();
    assert!(
        sv.to_vec().expect("host") == want_vals,
        "{what}: sort_pairs values n={n}"
    );
}

/// u32 keys (random, and few distinct values: long look-back runs of one
/// digit), f32 keys with signed zeros and NaNs, and f64 keys at each size.
fn check_all(e: &Engine, sizes: &[usize], what: &str) {
    let mut rng = Rng::new(5);
    for &n in sizes {
        let random = rng.u32s(n);
        check(
            e,
            &format!("{what} u32"),
            &random,
            &oracle_u32(&random),
            u64::from,
        );
        let few: Vec<u32> = random.iter().map(|x| x % 7 * 0x0101_0101).collect();
        check(
            e,
            &format!("{what} few u32"),
            &few,
            &oracle_u32(&few),
            u64::from,
        );
        let specials = [0.0f32, -0.0, f32::NAN, -f32::NAN, f32::INFINITY, -1.5];
        let floats: Vec<f32> = random
            .iter()
            .map(|&x| match x % 11 {
                k @ 0..=5 => specials[k as usize],
                _ => f32::from_bits(x),
            })
            .collect();
        let keys: Vec<u32> = floats.iter().map(|f| f32_key(f.to_bits())).collect();
        let bits32 = |f: f32| u64::from(f.to_bits());
        check(
            e,
            &format!("{what} f32"),
            &floats,
            &oracle_u32(&keys),
            bits32,
        );
        if e.gpu().expect("gpu").info().features.f64 {
            let doubles: Vec<f64> = random
                .iter()
                .zip(rng.u32s(n))
                .map(|(&a, b)| f64::from_bits(u64::from(a) << 32 | u64::from(b % 5)))
                .collect();
            let mut want: Vec<u32> = (0..n as u32).collect();
            want.sort_by_key(|&i| f64_key(doubles[i as usize].to_bits()));
            check(e, &format!("{what} f64"), &doubles, &want, f64::to_bits);
        }
    }
}

#[test]
fn onesweep_passes_their_fallback_and_the_three_dispatch_passes_sort_alike() {
    // Skips without a GPU (fails under TANDEM_REQUIRE_GPU=1).
    if common::own_gpu_engine().is_none() {
        return;
    }
    let plain = Engine::builder().build().expect("engine").on(Backend::Gpu);
    let masked = Engine::builder()
        .gpu_features(GpuFeatures::ALL.with_subgroups(false))
        .build()
        .expect("engine")
        .on(Backend::Gpu);
    let engines = [("subgroups", &plain), ("subgroups masked", &masked)];
    // Tiles are 1024 keys. 2^18 + 3 keys are 257 tiles: llvmpipe runs a
    // dispatch's workgroups in one block per thread, 128 or more each.
    let sizes = [1, 1023, 1024, 1025, 5 * 1024 + 7, 65_537, (1 << 18) + 3];
    for (name, e) in engines {
        check_all(e, &sizes, &format!("onesweep, {name}"));
    }
    // SAFETY: this binary's only test sets these while no other thread of
    // the process reads the environment (the engines above are idle).
    unsafe { std::env::set_var("TANDEM_SORT_SPIN", "0") };
    // Every look-back step counts its predecessor's keys itself (quadratic
    // in tiles, so small sizes only).
    for (name, e) in engines {
        check_all(
            e,
            &[2049, 9 * 1024 + 5, 40_001],
            &format!("fallback, {name}"),
        );
    }
    // SAFETY: as above.
    unsafe {
        std::env::remove_var("TANDEM_SORT_SPIN");
        std::env::set_var("TANDEM_SORT_ONESWEEP", "0");
    }
    for (name, e) in engines {
        check_all(e, &sizes, &format!("three dispatches a pass, {name}"));
    }
}
