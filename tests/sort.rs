//! Radix sort conformance: `Sort`, `SortPairs` and `Argsort` for u32, i32
//! and f32 keys on every backend, against `sort_by` oracles, bit for bit.
//!
//! Sizes: 0, 1, odd, the CPU comparison-sort threshold ± 1, the GPU tile
//! (1024 keys) ± 1, the scan block boundaries, primes, the CPU parallel
//! threshold, and a large input whose (digit × workgroup) table needs a
//! two-level scan. Patterns: random, few distinct keys (many ties), all
//! equal, sorted, reversed, negatives, and for f32: ±0.0, ±Inf, subnormals
//! and NaNs of both signs with several payloads (all after +Inf).
//!
//! Past one binding a GPU sort runs in chunks and output windows (tested
//! with 64 KiB bindings, up to the 4-binding limit of its digit table);
//! past that it returns `TooLarge`, and `Auto` then sorts on the CPU.

mod common;

use std::cmp::Ordering;

use common::{Rng, backends, own_gpu_engine};
use proptest::prelude::{ProptestConfig, any, proptest};
use tandem::kernels::sort::{COMPARISON_SORT_THRESHOLD, PARALLEL_SORT_THRESHOLD};
use tandem::kernels::{Argsort, Sort, SortPairs};
use tandem::{Backend, Buffer, Element, Engine, Error};

// ---------- oracles ----------

/// The documented order, written with the standard library's comparisons.
trait Key: Element + Copy {
    fn order(a: &Self, b: &Self) -> Ordering;
    fn bits(self) -> u32 {
        bytemuck::cast(self)
    }
}

impl Key for u32 {
    fn order(a: &u32, b: &u32) -> Ordering {
        a.cmp(b)
    }
}

impl Key for i32 {
    fn order(a: &i32, b: &i32) -> Ordering {
        a.cmp(b)
    }
}

impl Key for f32 {
    /// Numbers by `total_cmp` (so -0.0 < +0.0), then positive NaNs, then
    /// negative NaNs; within each NaN sign, `total_cmp` (by payload).
    fn order(a: &f32, b: &f32) -> Ordering {
        let class = |x: &f32| match (x.is_nan(), x.is_sign_negative()) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        };
        class(a).cmp(&class(b)).then(a.total_cmp(b))
    }
}

/// Stable sort of `(key, original index)` pairs by key.
fn oracle<T: Key>(keys: &[T]) -> Vec<(T, u32)> {
    let mut v: Vec<(T, u32)> = keys.iter().copied().zip(0u32..).collect();
    v.sort_by(|a, b| T::order(&a.0, &b.0));
    v
}

fn assert_same_bits<T: Key>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].bits() != want[i].bits()) {
        panic!(
            "{what}: first difference at {i} of {}: got {:?} ({:#010x}), want {:?} ({:#010x})",
            got.len(),
            got[i],
            got[i].bits(),
            want[i],
            want[i].bits()
        );
    }
}

fn assert_same_u32(what: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first difference at {i}: got {}, want {}",
            got[i], want[i]
        );
    }
}

/// Runs all three kernels on `keys` on every backend and checks each
/// against the oracle: keys bit for bit, pair values and argsort indices
/// exactly (so stability is checked wherever keys repeat).
fn check<T: Key>(what: &str, keys: &[T]) {
    for (b, e) in backends() {
        check_on(&format!("{what} on {b:?}"), &e, keys);
    }
}

/// [`check`] on one engine.
fn check_on<T: Key>(what: &str, e: &Engine, keys: &[T]) {
    let want = oracle(keys);
    let want_keys: Vec<T> = want.iter().map(|p| p.0).collect();
    let want_idx: Vec<u32> = want.iter().map(|p| p.1).collect();
    // Values: a scrambled function of the index, so a wrong permutation
    // cannot pass by accident.
    let vals: Vec<u32> = (0..keys.len() as u32)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    let want_vals: Vec<u32> = want_idx.iter().map(|&i| vals[i as usize]).collect();
    let kb = Buffer::from(keys.to_vec());
    let vb = Buffer::from(vals);
    {
        let n = keys.len();
        let ctx = format!("{what} n={n} {}", std::any::type_name::<T>());
        let sorted = e.run(&Sort, &kb).expect("sort").to_vec().unwrap();
        assert_same_bits(&format!("sort {ctx}"), &sorted, &want_keys);
        let (sk, sv) = e.run(&SortPairs, (&kb, &vb)).expect("sort_pairs");
        assert_same_bits(
            &format!("sort_pairs keys {ctx}"),
            &sk.to_vec().unwrap(),
            &want_keys,
        );
        assert_same_u32(
            &format!("sort_pairs values {ctx}"),
            &sv.to_vec().unwrap(),
            &want_vals,
        );
        let idx = e.run(&Argsort, &kb).expect("argsort").to_vec().unwrap();
        assert_same_u32(&format!("argsort {ctx}"), &idx, &want_idx);
    }
}

// ---------- data ----------

/// Sizes around every boundary of both implementations.
fn sizes() -> Vec<usize> {
    let mut v = vec![
        0,
        1,
        2,
        7,
        255,
        256,
        257,
        COMPARISON_SORT_THRESHOLD - 1,
        COMPARISON_SORT_THRESHOLD,
        COMPARISON_SORT_THRESHOLD + 1,
        1023,
        1024,
        1025,
        // Table of 256 × 5 workgroups: just past one scan block.
        4097,
        65_537,
        PARALLEL_SORT_THRESHOLD + 3,
        99_991,
    ];
    v.sort_unstable();
    v.dedup();
    v
}

fn random_u32s(n: usize, seed: u64) -> Vec<u32> {
    Rng::new(seed).u32s(n)
}

/// Floats of every class: normals of both signs over many exponents,
/// subnormals, ±0, ±Inf and NaNs of both signs with several payloads.
fn special_f32s(n: usize, seed: u64) -> Vec<f32> {
    let specials = [
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0x7fff_ffff),
        f32::from_bits(0xff80_0001),
        f32::from_bits(0xffc0_5678),
        f32::from_bits(0xffff_ffff),
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        f32::MAX,
        f32::MIN,
        1.0,
        -1.0,
    ];
    mixed(
        n,
        seed,
        &specials,
        |r| r.f32(-4.0, 4.0),
        |r| f32::from_bits(r.next_u32()),
    )
}

// ---------- conformance ----------

#[test]
fn u32_keys_sort_like_the_oracle_at_every_boundary_size() {
    for n in sizes() {
        check("random", &random_u32s(n, n as u64));
        let few: Vec<u32> = random_u32s(n, 7).iter().map(|x| x % 5).collect();
        check("few distinct", &few);
    }
}

#[test]
fn i32_keys_sort_like_the_oracle_with_negatives_and_ties() {
    for n in sizes() {
        check("random", &Rng::new(n as u64 + 1).i32s(n));
        check("small range", &Rng::new(3).small_i32s(n, 9));
    }
    let edges = vec![
        i32::MIN,
        -1,
        0,
        1,
        i32::MAX,
        i32::MIN + 1,
        i32::MAX - 1,
        0,
        -1,
    ];
    check("edges", &edges);
}

#[test]
fn f32_keys_sort_zeros_infinities_and_every_nan_last() {
    for n in sizes() {
        check("specials", &special_f32s(n, n as u64 + 2));
    }
    let nans = vec![
        f32::from_bits(0xffc0_0000),
        1.0,
        f32::from_bits(0x7fc0_0001),
        f32::INFINITY,
        -0.0,
        f32::from_bits(0xff80_0001),
        0.0,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_0000),
        -0.0,
    ];
    check("nans", &nans);
    let sorted = Engine::new()
        .unwrap()
        .on(Backend::Cpu)
        .run(&Sort, &Buffer::from(nans))
        .unwrap()
        .to_vec()
        .unwrap();
    // The documented order, spelled out.
    let want = [
        0xff80_0000u32,
        0x8000_0000,
        0x8000_0000,
        0x0000_0000,
        0x3f80_0000,
        0x7f80_0000,
        0x7fc0_0000,
        0x7fc0_0001,
        0xffc0_0000,
        0xff80_0001,
    ];
    let got: Vec<u32> = sorted.iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, want);
}

#[test]
fn structured_inputs_sort_correctly() {
    let n = 5000;
    let asc: Vec<i32> = (0..n as i32).map(|i| i - 2500).collect();
    check("ascending", &asc);
    let desc: Vec<i32> = asc.iter().rev().copied().collect();
    check("descending", &desc);
    check("all equal", &vec![42u32; n]);
    check(
        "all equal large",
        &vec![-3.5f32; PARALLEL_SORT_THRESHOLD * 2 + 5],
    );
    // Keys that differ only in the top byte, or only in the bottom byte:
    // the CPU skips the other passes.
    let top: Vec<u32> = random_u32s(n, 9).iter().map(|x| x & 0xff00_0000).collect();
    check("top byte only", &top);
    let low: Vec<u32> = random_u32s(n, 10).iter().map(|x| x & 0xff).collect();
    check("low byte only", &low);
    let zigzag: Vec<f32> = (0..n)
        .map(|i| if i % 2 == 0 { i as f32 } else { -(i as f32) })
        .collect();
    check("zigzag", &zigzag);
}

#[test]
fn a_large_input_sorts_stably_on_every_backend() {
    // 2^19 + 3 keys: the GPU table has 513 × 256 entries, a two-level scan
    // (block sums scanned, then added); the CPU runs in parallel chunks.
    // Many duplicates, so stability is checked at scale.
    let n = (1 << 19) + 3;
    let keys: Vec<u32> = random_u32s(n, 11).iter().map(|x| x % 1000).collect();
    check("large duplicates", &keys);
    let floats = special_f32s(n, 12);
    let want: Vec<f32> = oracle(&floats).into_iter().map(|p| p.0).collect();
    let fb = Buffer::from(floats);
    for (b, e) in backends() {
        let got = e.run(&Sort, &fb).unwrap().to_vec().unwrap();
        assert_same_bits(&format!("large f32 on {b:?}"), &got, &want);
    }
}

// ---------- errors and limits ----------

#[test]
fn mismatched_pair_lengths_are_an_error_naming_both_lengths() {
    let k = Buffer::from(vec![3u32, 1, 2]);
    let v = Buffer::from(vec![0u32, 1]);
    for (b, e) in backends() {
        let err = e.run(&SortPairs, (&k, &v)).unwrap_err();
        assert_eq!(
            err,
            Error::LengthMismatch {
                kernel: "sort_pairs",
                left: 3,
                right: 2
            },
            "{b:?}"
        );
    }
}

#[test]
fn inputs_past_the_binding_limit_sort_in_chunks_and_windows_on_the_gpu() {
    let Some(small) = common::small_binding_engine() else {
        return;
    };
    let gpu = small.on(Backend::Gpu);
    // 16,384 keys per binding: one key past it, ragged chunks and windows,
    // 65,536 keys, the most whose digit table (256 counts per tile of 1024)
    // fits one binding, and 100,003, whose table goes in parts, one per
    // chunk. Few distinct keys too, so ties cross windows and chunks.
    for (i, n) in [16_385, 40_000, 65_536, 100_003].into_iter().enumerate() {
        let seed = 20 + i as u64;
        let before = gpu.stats();
        check_on(&format!("windowed u32 n={n}"), &gpu, &random_u32s(n, seed));
        assert!(gpu.stats().since(&before).gpu_dispatches > 3 * 4 * 3);
        let ties: Vec<i32> = random_u32s(n, seed)
            .iter()
            .map(|&r| (r % 7) as i32 - 3)
            .collect();
        check_on(&format!("windowed i32 ties n={n}"), &gpu, &ties);
        check_on(&format!("windowed f32 n={n}"), &gpu, &special_f32s(n, seed));
    }
}

#[test]
fn an_input_whose_digit_table_passes_one_binding_sorts_on_the_gpu_with_the_table_in_parts() {
    let Some(small) = common::small_binding_engine() else {
        return;
    };
    let gpu = small.on(Backend::Gpu);
    // One tile past the 65,536 keys whose digit table fills a 64 KiB
    // binding; the last chunk's part of the table is a single tile's.
    let n = 65_537;
    let raw = random_u32s(n, 13);
    let keys = Buffer::from(raw.clone());
    let got = gpu.run(&Sort, &keys).unwrap().to_vec().unwrap();
    let mut want = raw.clone();
    want.sort_unstable();
    assert_eq!(got, want);
    let idx = gpu.run(&Argsort, &keys).unwrap().to_vec().unwrap();
    let mut want_idx: Vec<u32> = (0..n as u32).collect();
    want_idx.sort_by_key(|&i| raw[i as usize]);
    assert_same_u32("argsort n=65537 with 64 KiB bindings", &idx, &want_idx);
}

#[test]
fn empty_inputs_dispatch_nothing() {
    let Some(e) = own_gpu_engine() else { return };
    let before = e.stats();
    let k = Buffer::<f32>::from(Vec::new());
    let v = Buffer::<u32>::from(Vec::new());
    assert!(e.run(&Sort, &k).unwrap().is_empty());
    assert!(e.run(&Argsort, &k).unwrap().is_empty());
    let (a, b) = e.run(&SortPairs, (&k, &v)).unwrap();
    assert!(a.is_empty() && b.is_empty());
    let s = e.stats().since(&before);
    assert_eq!((s.gpu_dispatches, s.uploads), (0, 0), "{s:?}");
}

#[test]
fn a_gpu_sort_leaves_its_input_unchanged_and_chains_without_transfers() {
    let Some(e) = own_gpu_engine() else { return };
    let data = special_f32s(3000, 15);
    let keys = Buffer::from(data.clone());
    let sorted = e.run(&Sort, &keys).unwrap();
    // Sorting the sorted output again stays on the device and changes nothing.
    let before = e.stats();
    let again = e.run(&Sort, &sorted).unwrap();
    let s = e.stats().since(&before);
    assert_eq!((s.uploads, s.downloads), (0, 0), "{s:?}");
    assert_same_bits(
        "resorted",
        &again.to_vec().unwrap(),
        &sorted.to_vec().unwrap(),
    );
    assert_same_bits("input", &keys.to_vec().unwrap(), &data);
}

#[test]
fn work_counts_every_pass_over_keys_and_values() {
    let k = Buffer::from(vec![0u32; 1000]);
    let v = Buffer::from(vec![0u32; 1000]);
    let w = tandem::Kernel::work(&Sort, &&k);
    assert_eq!(w.elements, 1000);
    assert_eq!(w.bytes_read, 4000 * 5);
    assert_eq!(w.bytes_written, 4000 * 4);
    let w = tandem::Kernel::work(&SortPairs, &(&k, &v));
    assert_eq!(w.bytes_read, 4000 * 9);
    assert_eq!(w.bytes_written, 4000 * 8);
    // f64: eight 8-bit digits over 8-byte keys.
    let k64 = Buffer::from(vec![0f64; 1000]);
    let w = tandem::Kernel::work(&Sort, &&k64);
    assert_eq!(w.bytes_read, 8000 * 9);
    assert_eq!(w.bytes_written, 8000 * 8);
    let w = tandem::Kernel::work(&SortPairs, &(&k64, &v));
    assert_eq!(w.bytes_read, 8000 + 8 * 12_000);
    assert_eq!(w.bytes_written, 8 * 12_000);
    // Argsort makes its first pass's indices instead of reading them.
    let w = tandem::Kernel::work(&Argsort, &&k64);
    assert_eq!(w.bytes_read, 8000 + 8 * 12_000 - 4000);
    assert_eq!(w.bytes_written, 8 * 12_000);
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn gpu_equals_cpu_equals_oracle_for_any_f32_bits(
        bits in proptest::collection::vec(any::<u32>(), 0..3000),
        ties in 0u32..4,
    ) {
        // `ties` > 0 folds the keys onto a few values so stability matters.
        let keys: Vec<f32> = bits
            .iter()
            .map(|&b| f32::from_bits(if ties > 0 { (b % (ties * 3)) | (b & 0x8000_0000) } else { b }))
            .collect();
        check("proptest f32", &keys);
    }

    #[test]
    fn gpu_equals_cpu_equals_oracle_for_any_i32(
        keys in proptest::collection::vec(any::<i32>(), 0..3000),
    ) {
        check("proptest i32", &keys);
    }
}

// ---------- f64 keys ----------

/// The documented f64 order's key: the f32 transform at 64 bits.
fn key64(bits: u64) -> u64 {
    let s = if bits >> 63 != 0 {
        !bits
    } else {
        bits | 1 << 63
    };
    s.wrapping_sub(0x000f_ffff_ffff_ffff)
}

/// f64s of every class, with many ties among them.
fn special_f64s(n: usize, seed: u64) -> Vec<f64> {
    let specials = [
        0.0f64,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::from_bits(0x7ff8_0000_1234_0000),
        f64::from_bits(0x7fff_ffff_ffff_ffff),
        f64::from_bits(0xfff0_0000_0000_0001),
        f64::from_bits(0xfff8_0000_0000_5678),
        f64::from_bits(0xffff_ffff_ffff_ffff),
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::from_bits(0x8000_0000_0000_0001),
        f64::MAX,
        f64::MIN,
        1.0,
        -1.0,
        // Equal high words, low words apart: the second sort must keep the
        // first's order.
        f64::from_bits(0x3ff0_0000_ffff_ffff),
        f64::from_bits(0x3ff0_0000_0000_0000),
        f64::from_bits(0xbff0_0000_ffff_ffff),
    ];
    mixed(
        n,
        seed,
        &specials,
        |r| f64::from(r.f32(-4.0, 4.0)),
        |r| f64::from_bits(u64::from(r.next_u32()) << 32 | u64::from(r.next_u32())),
    )
}

/// `n` draws: a quarter from `specials`, a quarter `small` values, half
/// `any` bit pattern (every exponent, some NaNs).
fn mixed<F: Copy>(
    n: usize,
    seed: u64,
    specials: &[F],
    small: impl Fn(&mut Rng) -> F,
    any: impl Fn(&mut Rng) -> F,
) -> Vec<F> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let r = rng.next_u32();
            match r % 4 {
                0 => specials[(r >> 8) as usize % specials.len()],
                1 => small(&mut rng),
                _ => any(&mut rng),
            }
        })
        .collect()
}

#[test]
fn f64_keys_sort_bit_for_bit_in_the_documented_order_on_every_backend() {
    for (i, n) in [1usize, 2, 1023, 1025, 5000, 70_001]
        .into_iter()
        .enumerate()
    {
        let keys = special_f64s(n, 90 + i as u64);
        let mut want: Vec<(u64, u32)> = keys.iter().map(|k| k.to_bits()).zip(0u32..).collect();
        want.sort_by_key(|&(b, _)| key64(b));
        let want_bits: Vec<u64> = want.iter().map(|p| p.0).collect();
        let want_idx: Vec<u32> = want.iter().map(|p| p.1).collect();
        let vals: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
        let want_vals: Vec<u32> = want_idx.iter().map(|&i| vals[i as usize]).collect();
        let (kb, vb) = (Buffer::from(keys), Buffer::from(vals));
        for (b, e) in backends() {
            let what = format!("f64 n={n} on {b:?}");
            let bits = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let sorted = e.run(&Sort, &kb).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(bits(sorted.to_vec().unwrap()), want_bits, "sort {what}");
            let (sk, sv) = e.run(&SortPairs, (&kb, &vb)).unwrap();
            assert_eq!(
                bits(sk.to_vec().unwrap()),
                want_bits,
                "sort_pairs keys {what}"
            );
            assert_same_u32(
                &format!("sort_pairs values {what}"),
                &sv.to_vec().unwrap(),
                &want_vals,
            );
            let idx = e.run(&Argsort, &kb).unwrap().to_vec().unwrap();
            assert_same_u32(&format!("argsort {what}"), &idx, &want_idx);
        }
    }
}

#[test]
fn f64_keys_past_one_binding_sort_in_chunks_and_windows_on_the_gpu() {
    let Some(small) = common::small_binding_engine() else {
        return;
    };
    if !small.gpu().is_some_and(|g| g.info().features.f64) {
        return;
    }
    let gpu = small.on(Backend::Gpu);
    let whole = common::own_gpu_engine().expect("a GPU, as `small` has one");
    // 8,192 f64 fill a 64 KiB binding: one past it, ragged chunks, 65,536
    // keys (eight bindings of keys; the 32-bit passes' digit table is full)
    // and 70,001 (the table in parts). Every kernel, against the
    // documented order.
    for (i, n) in [8_193usize, 30_001, 65_536, 70_001].into_iter().enumerate() {
        let keys = special_f64s(n, 60 + i as u64);
        let mut want: Vec<(u64, u32)> = keys.iter().map(|k| k.to_bits()).zip(0u32..).collect();
        want.sort_by_key(|&(b, _)| key64(b));
        let vals: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
        let (kb, vb) = (Buffer::from(keys), Buffer::from(vals.clone()));
        let what = format!("f64 n={n} with 64 KiB bindings");
        let before = gpu.stats();
        let got = gpu
            .run(&Sort, &kb)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let bits: Vec<u64> = got.to_vec().unwrap().iter().map(|x| x.to_bits()).collect();
        assert_eq!(
            bits,
            want.iter().map(|p| p.0).collect::<Vec<_>>(),
            "sort {what}"
        );
        // Chunks and windows: more dispatches than the same sort within
        // one binding.
        let chunked = gpu.stats().since(&before).gpu_dispatches;
        let before = whole.stats();
        whole.run(&Sort, &kb).unwrap();
        let one = whole.stats().since(&before).gpu_dispatches;
        assert!(
            chunked > one,
            "{what}: {chunked} dispatches, {one} in one binding"
        );
        let (_, sv) = gpu.run(&SortPairs, (&kb, &vb)).unwrap();
        let want_vals: Vec<u32> = want.iter().map(|p| vals[p.1 as usize]).collect();
        assert_same_u32(
            &format!("sort_pairs {what}"),
            &sv.to_vec().unwrap(),
            &want_vals,
        );
        let idx = gpu.run(&Argsort, &kb).unwrap().to_vec().unwrap();
        let want_idx: Vec<u32> = want.iter().map(|p| p.1).collect();
        assert_same_u32(&format!("argsort {what}"), &idx, &want_idx);
    }
}

// ---------- the keys-only CPU sort (MSD) ----------

/// CPU engines with the pool's threads and with one thread: the MSD sort's
/// parallel and serial paths.
fn cpu_engines() -> Vec<(&'static str, Engine)> {
    [("cpu", 0), ("cpu, 1 thread", 1)]
        .into_iter()
        .map(|(name, threads)| {
            let e = Engine::builder()
                .gpu(false)
                .threads(threads)
                .build()
                .expect("a CPU engine")
                .on(Backend::Cpu);
            (name, e)
        })
        .collect()
}

/// `Sort` of f64 keys on both CPU engines against the documented order.
fn check_f64_sort(what: &str, keys: Vec<f64>) {
    let mut want: Vec<u64> = keys.iter().map(|k| k.to_bits()).collect();
    want.sort_by_key(|&b| key64(b));
    let kb = Buffer::from(keys);
    for (name, e) in cpu_engines() {
        let got: Vec<u64> = e
            .run(&Sort, &kb)
            .unwrap_or_else(|err| panic!("{what} on {name}: {err}"))
            .to_vec()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{what} n={} on {name}: first difference at {i}: got {:#x}, want {:#x}",
                want.len(),
                got[i],
                want[i]
            );
        }
        assert_eq!(got.len(), want.len(), "{what} on {name}: length");
    }
}

#[test]
fn f64_keys_sort_by_msd_through_bunching_ties_outliers_and_deep_digits() {
    let mut rng = Rng::new(77);
    let mut uniform = |n: usize, lo: f64, width: f64| -> Vec<f64> {
        (0..n)
            .map(|_| {
                let bits = u64::from(rng.next_u32()) << 21 ^ u64::from(rng.next_u32());
                lo + width * (bits as f64 / (1u64 << 53) as f64)
            })
            .collect()
    };
    // Around the thresholds and the first level's bucket sizes.
    for n in [
        COMPARISON_SORT_THRESHOLD,
        COMPARISON_SORT_THRESHOLD + 1,
        2047,
        PARALLEL_SORT_THRESHOLD - 1,
        PARALLEL_SORT_THRESHOLD,
        300_007,
    ] {
        check_f64_sort("uniform [0.5, 2)", uniform(n, 0.5, 1.5));
    }
    // Keys bunched in a range whose top 40 bits are shared, plus one far
    // outlier: the first level splits off the outlier and leaves one
    // bucket of every other key, which the pool sorts by further levels.
    let mut bunched = uniform(300_000, 1.0, 1e-9);
    bunched[123] = 1e300;
    check_f64_sort("bunched with an outlier", bunched);
    let mut bunched = uniform(5000, -1.0, 1e-9);
    bunched[17] = f64::NAN;
    check_f64_sort("bunched with a NaN", bunched);
    // Normally distributed keys: both signs, the first level's buckets
    // are exponents, a few of them past an in-cache level's reach.
    let mut r = Rng::new(8);
    let normal: Vec<f64> = (0..400_001)
        .map(|_| {
            let u1 = (f64::from(r.next_u32()) + 0.5) / 4_294_967_296.0;
            let u2 = f64::from(r.next_u32()) / 4_294_967_296.0;
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    check_f64_sort("normal", normal);
    // Keys that differ only in their low bits: every level's digit sits
    // near the bottom.
    let mut r = Rng::new(5);
    let low: Vec<f64> = (0..200_003)
        .map(|_| f64::from_bits(0x4000_0000_0000_0000 | u64::from(r.next_u32() & 0xfff)))
        .collect();
    check_f64_sort("low bits only", low);
    // Few distinct keys (buckets of equal keys, far past the insertion
    // sort's reach), all equal but one, and every class of f64.
    let few: Vec<f64> = (0..250_000)
        .map(|i| [3.0, -1.5, 0.0, 7.25, -0.0][i * 7 % 5])
        .collect();
    check_f64_sort("five distinct keys", few);
    let mut one_off = vec![2.5f64; 100_000];
    one_off[99_999] = 2.5000000000000004;
    check_f64_sort("all equal but one", one_off);
    check_f64_sort("every class", special_f64s(200_003, 31));
    check_f64_sort("descending", (0..100_000).rev().map(f64::from).collect());
}

#[test]
fn u32_keys_past_the_msd_threshold_sort_like_the_oracle() {
    use tandem::kernels::sort::MSD_MIN_KEYS_32;
    let mut rng = Rng::new(11);
    let n = MSD_MIN_KEYS_32 + 5;
    let random = rng.u32s(n);
    // Every key below 2^20 but one: one first-level bucket holds the rest.
    let mut bunched: Vec<u32> = random.iter().map(|k| k >> 12).collect();
    bunched[n / 2] = u32::MAX;
    for (what, keys) in [("random", random), ("bunched", bunched)] {
        let mut want = keys.clone();
        want.sort_unstable();
        let kb = Buffer::from(keys);
        for (name, e) in cpu_engines() {
            let got = e.run(&Sort, &kb).expect("sort").to_vec().unwrap();
            assert!(
                got == want,
                "{what} u32 n={n} on {name}: differs from the oracle"
            );
        }
    }
}

/// `Sort` (keys only) on both CPU engines against `sort_unstable` of the
/// keys' order-preserving images.
fn check_keys_sort<T: Key>(what: &str, keys: Vec<T>) {
    let mut want = keys.clone();
    want.sort_by(T::order);
    let kb = Buffer::from(keys);
    for (name, e) in cpu_engines() {
        let got = e.run(&Sort, &kb).expect("sort").to_vec().unwrap();
        assert_same_bits(&format!("{what} n={} on {name}", want.len()), &got, &want);
    }
}

#[test]
fn keys_sort_at_every_sorting_network_size_with_padding_equal_keys() {
    // On AVX-512 builds a keys-only sort of up to 256 u32 (128 f64) keys is
    // one sorting network, padded with the largest key to whole registers;
    // longer ones are bucketed into such networks. Every length through
    // two networks' worth, with keys drawn from a few values that include
    // the padding key itself (u32::MAX, and the NaN bits whose image is
    // the largest key: 0xff80_0001 for f32, 0xfff0_0000_0000_0001 for
    // f64), then fully random keys.
    let mut rng = Rng::new(2024);
    for n in 0..=600 {
        let few: Vec<u32> = (0..n)
            .map(|_| [0, 1, 7, u32::MAX - 1, u32::MAX][rng.next_u32() as usize % 5])
            .collect();
        check_keys_sort("u32 of five values", few);
        check_keys_sort("u32 random", rng.u32s(n));
        let f: Vec<f32> = (0..n)
            .map(|_| match rng.next_u32() % 4 {
                0 => f32::from_bits(0xff80_0001),
                1 => -0.0,
                _ => f32::from_bits(rng.next_u32()),
            })
            .collect();
        check_keys_sort("f32 with NaNs", f);
        let i: Vec<i32> = rng.u32s(n).into_iter().map(|k| k as i32).collect();
        check_keys_sort("i32 random", i);
    }
    assert_eq!(key64(0xfff0_0000_0000_0001), u64::MAX);
    for n in 0..=300 {
        let few: Vec<f64> = (0..n)
            .map(|_| {
                let pad = f64::from_bits(0xfff0_0000_0000_0001);
                [1.0, -2.0, pad, f64::INFINITY][rng.next_u32() as usize % 4]
            })
            .collect();
        check_f64_sort("f64 of four values", few);
        check_f64_sort(
            "f64 every class",
            special_f64s(n, u64::from(rng.next_u32())),
        );
    }
}

#[test]
fn floats_bunched_under_a_few_exponents_sort_by_quantile_buckets() {
    // Uniform in [0, 1): half the keys share one exponent, so on AVX-512
    // builds the first level places its buckets by the sample's quantiles
    // (from 2^22 f32 keys); the sample misses the tiniest keys, so the
    // count finds a higher differing bit and the buckets are placed again
    // from it, as they are for one far outlier at an index the sample
    // skips.
    // Exponentially distributed u32 keys bunch near zero the same way.
    let mut rng = Rng::new(99);
    let n = (1 << 22) + 3;
    let unit: Vec<f32> = (0..n)
        .map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
        .collect();
    check_keys_sort("f32 in [0, 1)", unit.clone());
    let mut outlier = unit;
    outlier[5] = 3.0e38;
    check_keys_sort("f32 in [0, 1) with an outlier", outlier);
    let exp: Vec<u32> = (0..n)
        .map(|_| {
            let u = (f64::from(rng.next_u32()) + 0.5) / 4_294_967_296.0;
            (-u.ln() * 1e6) as u32
        })
        .collect();
    check_keys_sort("u32 exponentially distributed", exp);
    let mut r = Rng::new(3);
    let unit64: Vec<f64> = (0..(1 << 21) + 1)
        .map(|_| {
            (u64::from(r.next_u32()) << 21 ^ u64::from(r.next_u32())) as f64 / (1u64 << 53) as f64
        })
        .collect();
    check_f64_sort("f64 in [0, 1)", unit64);
}
