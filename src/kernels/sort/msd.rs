//! The keys-only CPU sort ([`Sort`](super::Sort)): most-significant-digit
//! radix sort down to buckets that fit in cache.
//!
//! Keys alone need no stability: equal keys are equal bits. So instead of
//! the LSD sort's full passes over memory (up to eight for f64), one
//! parallel pass scatters the keys by a top digit into buckets, and each
//! bucket is then sorted where it sits in cache. Buckets of more than
//! [`WIDE_MIN`] keys (keys bunched under one top digit) get another level
//! like the first.
//!
//! - With sorting networks (`net.rs`, AVX-512F builds): the digits aim at
//!   buckets of about 64 `u32` or 32 `u64` keys ([`net_leaf_log2`]); a
//!   bucket a network holds (256 `u32`, 128 `u64`) is sorted by it, a
//!   larger one gets another digit first.
//! - Without: the first digit aims at buckets of about 2^11 keys; one more
//!   digit, of a bit more than log2 of the bucket's size, leaves most keys
//!   alone in their sub-bucket, and one insertion pass over the bucket
//!   finishes it. Sub-buckets of more than [`LEAF`] keys get a level of
//!   their own first.
//!
//! Every level takes its digit just below the highest bit in which its keys
//! differ (an OR of each key XOR the first), so digits that every key
//! shares cost nothing, a bucket of equal keys is done after one read, and
//! keys bunched in a narrow range (f64 in `[1, 2)` share their top twelve
//! bits) still spread over every bucket.

use std::ops::Range;

use rayon::prelude::*;

use super::{KeyMap, MIN_CHUNK, PARALLEL_SORT_THRESHOLD, SharedOut, Word};
use crate::cpu::Cpu;

/// A level's sub-buckets of at most this many keys are left to its
/// insertion pass; longer ones get a level of their own.
const LEAF: usize = 16;
/// Most bits of a digit in cache (a table of 8K `u32` offsets).
const MAX_BITS: u32 = 13;
/// Fewest and most bits of the first level's digit: the one pass over
/// memory, which scatters into that many streams per thread.
const TOP_BITS: (u32, u32) = (8, 12);
/// The first level aims at buckets of about `2^TOP_BUCKET_LOG2` keys (16
/// KiB of f64: in L1 with their scratch).
const TOP_BUCKET_LOG2: u32 = 11;

/// Whether [`sort_keys`] is the faster keys-only sort for `n` keys of
/// word `W`: always, with sorting networks (1.05–1.95× the LSD sort
/// from 2^14 to 2^22 `u32` keys, the rest a comparison sort's job that
/// the networks do faster).
pub(super) fn wins<W: Word>(n: usize) -> bool {
    W::NET_MAX > 0
        || n >= super::COMPARISON_SORT_THRESHOLD && (W::DIGITS > 4 || n >= super::MSD_MIN_KEYS_32)
}

/// Buckets of more keys than this (512 KiB of f64, half an L2) take
/// another level like the first ([`wide_msd`]) instead of an in-cache one,
/// whose digit would scatter to more streams than the cache holds.
const WIDE_MIN: usize = 1 << 16;

/// With sorting networks, keys of at least this many bytes scatter by a
/// first digit of at most [`LARGE_TOP_BITS`]: past the caches, each of a
/// wider digit's output streams misses the TLB. Measured on the 2-core
/// Zen 5 VM (best of 3 rounds, ms, 9 against 12 bits, leaves of an eighth
/// of a network): f64 2^22 13.8 against 18.6, 2^24 71.2 against 72.2; u32
/// 2^20 1.85 against 2.72, 2^22 7.5 against 11.2, 2^24 43.4 against 55.3;
/// normal f64 2^24 69.5 against 86.3 (2^22: 19.3 against 18.2). At 2^18
/// u32 keys (1 MiB) 12 bits were faster (0.42 against 0.53 ms).
const LARGE_BYTES: usize = 4 << 20;
/// See [`LARGE_BYTES`].
const LARGE_TOP_BITS: u32 = 9;

/// Bits of the first level's digit for `n` keys. With sorting networks,
/// buckets of [`net_leaf_log2`] keys where that takes at most
/// [`TOP_BITS`]`.1` bits, so that most buckets are done by one network.
fn top_bits<W: Word>(n: usize) -> u32 {
    if W::NET_MAX > 0 {
        let most = if n * size_of::<W>() >= LARGE_BYTES {
            LARGE_TOP_BITS
        } else {
            TOP_BITS.1
        };
        return n
            .ilog2()
            .saturating_sub(net_leaf_log2::<W>())
            .clamp(1, most);
    }
    n.ilog2()
        .saturating_sub(TOP_BUCKET_LOG2)
        .clamp(TOP_BITS.0, TOP_BITS.1)
}

/// Bits of a digit in cache for a bucket of `m` keys: one more than
/// `log2(m)`, so that buckets average under one key and few keys share
/// one. The insertion pass then seldom moves a key, and its branches
/// (which go the rare way on every move) seldom mispredict: one bit fewer
/// measured 1.25–1.7× slower for f64 at 2^22 and 2^24.
fn level_bits(m: usize) -> u32 {
    (m.ilog2() + 1).min(MAX_BITS)
}

/// Bits of a digit in cache for a bucket of `m` keys, with sorting
/// networks: sub-buckets of about `2^net_leaf_log2` keys.
fn net_bits<W: Word>(m: usize) -> u32 {
    m.ilog2()
        .saturating_sub(net_leaf_log2::<W>())
        .clamp(1, MAX_BITS)
}

/// log2 of the keys a level with sorting networks aims to leave in each
/// bucket: a quarter of a network's most (64 `u32`, 32 `u64`), so that
/// buckets average 1 to 2 times that. A network costs about what its
/// registers cost, and measured cheapest per key at four registers (0.72
/// ns a `u32` key against 1.0–1.3 at sixteen and 1.3 at one, sorting 2^16
/// keys in blocks). Against an eighth (medians, best of 4 rounds, Zen 5
/// VM): `u32` 2^12 8.7 against 9.7 us, 2^14 32 against 35 us, 2^16 79
/// against 91 us; f64 2^16 196 against 283 us; from 2^20 up within the
/// noise either way.
fn net_leaf_log2<W: Word>() -> u32 {
    W::NET_MAX.ilog2() - 2
}

/// The sorted keys of `src` (element bits: the key map applies on the way
/// in and is undone on the way out).
pub(super) fn sort_keys<K: KeyMap>(cpu: &Cpu, src: &[K::W]) -> Vec<K::W> {
    let n = src.len();
    let parallel = n >= PARALLEL_SORT_THRESHOLD && cpu.threads() > 1;
    let mut out = K::W::take(n);
    if K::W::net_fits(n) {
        out.iter_mut().zip(src).for_each(|(o, &b)| *o = K::key(b));
        K::W::net_sort(None, &mut out);
        if !K::IDENTITY {
            out.iter_mut().for_each(|k| *k = K::bits(*k));
        }
        return out;
    }
    let mut run = || {
        let Some(ends) =
            scatter::<K, true>(src, &mut out, top_bits::<K::W>(n), parallel, cpu.threads())
        else {
            // Every key is the same.
            out.copy_from_slice(src);
            return;
        };
        let mut tmp = K::W::take(n);
        let finish = |(d, t): (&mut [K::W], &mut [K::W])| {
            if d.len() > WIDE_MIN {
                wide_msd::<K>(d, t, false, parallel, cpu.threads());
            } else if K::W::net_fits(d.len()) {
                K::W::net_sort(None, d);
            } else {
                // The level below scatters into `t` at random, and each of
                // its lines it misses waits on memory; written in order
                // first, the lines stream in ahead of the writes.
                t.fill(K::W::ZERO);
                msd(d, t, false);
            }
            if !K::IDENTITY {
                d.iter_mut().for_each(|k| *k = K::bits(*k));
            }
        };
        let parts = split(&mut out, &mut tmp, &ends);
        if parallel {
            parts.into_par_iter().for_each(finish);
        } else {
            parts.into_iter().for_each(finish);
        }
        K::W::give_back(tmp);
    };
    if parallel {
        cpu.install(run);
    } else {
        run();
    }
    out
}

/// The digit of a level whose keys differ at most in bits `..=hb`: its
/// `(shift, bits)`, `bits` at most `want`.
fn digit_at(hb: u32, want: u32) -> (u32, u32) {
    let bits = want.min(hb + 1);
    (hb + 1 - bits, bits)
}

/// The highest bit in which the keys (mapped by `K` when `MAP`) differ, or
/// `None` when they are all the same.
fn differing_bit<K: KeyMap, const MAP: bool>(keys: &[K::W], parallel: bool) -> Option<u32> {
    let key = |b: K::W| if MAP { K::key(b) } else { b };
    let first = key(*keys.first()?);
    let fold = |s: &[K::W]| s.iter().fold(K::W::ZERO, |acc, &b| acc | (key(b) ^ first));
    let diff = if parallel {
        keys.par_chunks(MIN_CHUNK)
            .map(fold)
            .reduce(|| K::W::ZERO, |a, b| a | b)
    } else {
        fold(keys)
    };
    diff.highest_bit()
}

/// Keys [`scatter`] samples to place its digit.
const SAMPLE: usize = 1024;
/// Up to this many keys [`scatter`] places its digit by the exact highest
/// differing bit (one pass over keys in cache) instead of by a sample:
/// gathering the sample of 1024 keys took a tenth of a 1024-key sort
/// (best of 300 on the Zen 5 VM: `u32` 2^10 2.8 → 2.5 us, f64 2^10 4.6 →
/// 4.0 us; 2^12 and 2^14 within 3%). At 2^16 keys (sorted on two
/// threads) the pass measured even or slower, so it stops below.
const EXACT_BIT_MAX: usize = 1 << 15;
/// Keys [`scatter`] samples, with sorting networks, to place its buckets
/// by quantiles ([`quantile_map`]).
const QUANTILE_SAMPLE: usize = 4096;
/// Bits of the fine digit a quantile map reads ([`quantile_map`]): a table
/// of 2^14 `u16`s, 32 KiB.
const FINE_BITS: u32 = 14;

/// Scatters `src` (mapped by `K` when `MAP`) into `dst` by a digit of up to
/// `want` bits just below the highest bit in which the keys differ, in
/// parallel chunks when `parallel`; returns each bucket's end in `dst`, or
/// `None` (writing nothing) when every key is the same.
///
/// The digit is placed from a sample of the keys; the counting pass also
/// ORs every key's difference from the first, and counts again in the rare
/// case the sample missed a higher differing bit. So one read of the keys
/// places the digit and counts it.
///
/// With sorting networks, at the first level (`MAP`), where the sample
/// shows that one of the digit's buckets would take a level of its own
/// past [`WIDE_MIN`] keys (floats bunch under a few exponents: half of
/// those in `[0, 1)` share one), the buckets are placed by the sample's
/// quantiles instead ([`quantile_map`]). Measured (best of 4 alternated
/// rounds, digit against quantiles): f32 in `[0, 1)` 2^24 71.0 against
/// 51.7 ms (2^22: 14.6 against 14.4), f64 in `[0, 1)` 2^22 20.8 against
/// 17.6 ms, 2^24 98.7 against 73.5 ms; normal f64 even. Quantiles at the
/// wide levels too made normal f64 at 2^24 slower (74 against 99 ms):
/// their buckets are one busy exponent each, which a digit splits well.
fn scatter<K: KeyMap, const MAP: bool>(
    src: &[K::W],
    dst: &mut [K::W],
    want: u32,
    parallel: bool,
    threads: usize,
) -> Option<Vec<usize>> {
    debug_assert_eq!(src.len(), dst.len());
    let n = src.len();
    let key = |b: K::W| if MAP { K::key(b) } else { b };
    let first = key(*src.first()?);
    let quantiles = MAP && K::W::NET_MAX > 0 && n > WIDE_MIN;
    let (sample, mut hb) = if n <= EXACT_BIT_MAX {
        // In cache, one pass finds the exact bit: cheaper than gathering a
        // sample, and the count never has to start again.
        (Vec::new(), differing_bit::<K, MAP>(src, false)?)
    } else {
        let size = if quantiles { QUANTILE_SAMPLE } else { SAMPLE };
        let sample: Vec<K::W> = src
            .iter()
            .step_by(n.div_ceil(size))
            .map(|&b| key(b))
            .collect();
        let or = sample.iter().fold(K::W::ZERO, |acc, &k| acc | (k ^ first));
        let hb = match or.highest_bit() {
            Some(hb) => hb,
            None => differing_bit::<K, MAP>(src, parallel)?,
        };
        (sample, hb)
    };
    let chunk = if parallel {
        n.div_ceil(threads * 4).max(MIN_CHUNK)
    } else {
        n.max(1)
    };
    let ranges: Vec<Range<usize>> = (0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect();
    let mut level = Level {
        src,
        dst,
        ranges: &ranges,
        first,
        parallel,
    };
    // Counted again by the differing bit the count finds where the sample
    // missed it (tiny floats are rare in a sample, common in an input).
    loop {
        // Keys of both signs (floats) differ in the top bit, and a fine
        // digit from there reads mostly exponent bits, too coarse to split
        // the busy exponents (normal f64 keys at 2^24 sorted 1.4x slower
        // by quantiles).
        let both_signs = hb + 1 == 8 * size_of::<K::W>() as u32;
        let map = if quantiles && !both_signs {
            quantile_map(&sample, hb, want, n)
        } else {
            None
        };
        let placed = match &map {
            Some(Quantiles { shift, table }) => {
                let (shift, mask) = (*shift, table.len() - 1);
                let digit = |k: K::W| usize::from(table[(k >> shift).low() & mask]);
                level.scatter_by::<K, MAP>(hb, 1 << want, digit)
            }
            None => {
                let (shift, bits) = digit_at(hb, want);
                let mask = (1 << bits) - 1;
                let digit = |k: K::W| (k >> shift).low() & mask;
                level.scatter_by::<K, MAP>(hb, 1 << bits, digit)
            }
        };
        match placed {
            Ok(ends) => return Some(ends),
            Err(exact) => hb = exact,
        }
    }
}

/// A level's input, output and parallel chunks.
struct Level<'a, W> {
    src: &'a [W],
    dst: &'a mut [W],
    ranges: &'a [Range<usize>],
    /// The first key (mapped).
    first: W,
    parallel: bool,
}

impl<W: Word> Level<'_, W> {
    /// Counts the keys (mapped by `K` when `MAP`) into `buckets` buckets by
    /// `digit`, which must be monotone in the key and below `buckets` for
    /// every key that differs from the first at most in bits `..=hb`, then
    /// scatters them and returns each bucket's end. `Err` with the highest
    /// differing bit, writing nothing, when some key differs above `hb`.
    fn scatter_by<K: KeyMap<W = W>, const MAP: bool>(
        &mut self,
        hb: u32,
        buckets: usize,
        digit: impl Fn(W) -> usize + Sync,
    ) -> Result<Vec<usize>, u32> {
        let (src, first) = (self.src, self.first);
        let count =
            |r: &Range<usize>| count_digits::<K, MAP>(&src[r.clone()], first, buckets, &digit);
        let counted: Vec<(Table, W)> = if self.parallel {
            self.ranges.par_iter().map(count).collect()
        } else {
            self.ranges.iter().map(count).collect()
        };
        let diff = counted.iter().fold(W::ZERO, |acc, c| acc | c.1);
        if let Some(exact) = diff.highest_bit().filter(|&e| e > hb) {
            return Err(exact);
        }
        let mut offsets: Vec<Table> = counted.into_iter().map(|c| c.0).collect();
        // Exclusive scan, bucket-major then chunk: chunk c's keys of bucket
        // d go to offsets[c][d] onward.
        let mut ends = vec![0usize; buckets];
        let mut run = 0usize;
        for (d, end) in ends.iter_mut().enumerate() {
            for off in offsets.iter_mut() {
                let c = off[d];
                off[d] = run;
                run += c;
            }
            *end = run;
        }
        debug_assert_eq!(run, src.len());
        let out = SharedOut(self.dst.as_mut_ptr());
        let task = |(r, off): (&Range<usize>, &mut Table)| {
            // SAFETY: `off` holds this chunk's exclusive offsets, from exact
            // counts of these very keys by this digit: every slot it writes
            // is below n (`dst`'s length) and owned by this chunk alone.
            unsafe { scatter_chunk::<K, MAP>(&src[r.clone()], off, &digit, out) }
        };
        if self.parallel {
            self.ranges
                .par_iter()
                .zip(offsets.par_iter_mut())
                .for_each(task);
        } else {
            self.ranges.iter().zip(offsets.iter_mut()).for_each(task);
        }
        Ok(ends)
    }
}

/// A level's buckets by quantiles: `table[fine digit]` is the bucket.
struct Quantiles {
    /// Shift of the fine digit (its bits: log2 of the table's length).
    shift: u32,
    table: Box<[u16]>,
}

/// Buckets placed by the quantiles of `sample` (mapped keys that differ at
/// most in bits `..=hb`, drawn evenly from `n` keys), `2^want` of them:
/// `None` where the digit of `want` bits would do, its largest bucket
/// (scaled from the sample) holding at most [`WIDE_MIN`] keys. Each value
/// of a fine digit of [`FINE_BITS`] just below `hb` goes to the bucket of
/// the sample's share of keys below it, so the map is monotone (bucket
/// order is key order) and buckets hold about equal shares of the sample,
/// down to one fine digit's keys.
fn quantile_map<W: Word>(sample: &[W], hb: u32, want: u32, n: usize) -> Option<Quantiles> {
    debug_assert!(want <= 16);
    // The digit's largest bucket in the sample, scaled to the `n` keys.
    let (dshift, dbits) = digit_at(hb, want);
    let dmask = (1usize << dbits) - 1;
    let mut count = vec![0usize; 1 << dbits];
    for &k in sample {
        count[(k >> dshift).low() & dmask] += 1;
    }
    let largest = count.iter().max().copied().unwrap_or(0) * n / sample.len().max(1);
    if largest <= WIDE_MIN {
        return None;
    }
    let (shift, bits) = digit_at(hb, FINE_BITS);
    let mask = (1usize << bits) - 1;
    let mut fine = vec![0u32; 1 << bits];
    for &k in sample {
        fine[(k >> shift).low() & mask] += 1;
    }
    let buckets = 1usize << want;
    let mut below = 0usize;
    let table = fine
        .iter()
        .map(|&c| {
            let b = (below * buckets / sample.len()).min(buckets - 1);
            below += c as usize;
            b as u16
        })
        .collect();
    Some(Quantiles { shift, table })
}

/// A digit table of a parallel level: counts, then offsets.
/// One entry a bucket, so a small sort does not clear a large table.
type Table = Box<[usize]>;

/// Counts `keys` (mapped by `K` when `MAP`) into `buckets` buckets by
/// `digit`, and ORs together every key's difference from `first`.
fn count_digits<K: KeyMap, const MAP: bool>(
    keys: &[K::W],
    first: K::W,
    buckets: usize,
    digit: impl Fn(K::W) -> usize,
) -> (Table, K::W) {
    debug_assert!(buckets.is_power_of_two());
    let mut c: Table = vec![0usize; buckets].into_boxed_slice();
    let mut diff = K::W::ZERO;
    // Sliced to `m + 1` entries and indexed `& m` (a no-op: digits are
    // below `buckets`), so that no index needs a bounds check.
    let m = buckets - 1;
    let t = &mut c[..=m];
    for &b in keys {
        let k = if MAP { K::key(b) } else { b };
        diff = diff | (k ^ first);
        t[digit(k) & m] += 1;
    }
    (c, diff)
}

/// Scatters `keys` (mapped by `K` when `MAP`) by `digit`: each to
/// `out[off[digit]]`, bumping the offset.
///
/// # Safety
/// `off` must hold exclusive offsets into `out` from exact counts of these
/// keys' digits, in slots no other thread writes meanwhile.
unsafe fn scatter_chunk<K: KeyMap, const MAP: bool>(
    keys: &[K::W],
    off: &mut Table,
    digit: impl Fn(K::W) -> usize,
    out: SharedOut<K::W>,
) {
    // As in `count_digits`: no bounds checks.
    let m = off.len() - 1;
    let off = &mut off[..=m];
    for &b in keys {
        let k = if MAP { K::key(b) } else { b };
        let o = &mut off[digit(k) & m];
        // SAFETY: by the contract, `*o` is a slot of `out` this call owns.
        unsafe { out.0.add(*o).write(k) };
        *o += 1;
    }
}

/// `a` and `b` cut at the bucket ends `ends`: each bucket's pair of parts.
fn split<'a, W>(
    mut a: &'a mut [W],
    mut b: &'a mut [W],
    ends: &[usize],
) -> Vec<(&'a mut [W], &'a mut [W])> {
    let mut parts = Vec::with_capacity(ends.len());
    let mut start = 0;
    for &end in ends {
        if end > start {
            let (ha, ta) = std::mem::take(&mut a).split_at_mut(end - start);
            let (hb, tb) = std::mem::take(&mut b).split_at_mut(end - start);
            parts.push((ha, hb));
            (a, b) = (ta, tb);
        }
        start = end;
    }
    parts
}

/// Sorts the keys in `data` (mapped keys) into `data`, or into `tmp` when
/// `into_tmp`, using the other as scratch, for a bucket past [`WIDE_MIN`]
/// keys (keys bunched under one first-level digit: a normal distribution's
/// few busy exponents, say): a level like the first, whose digit aims at
/// buckets that fit in cache, its passes on the pool when `parallel`.
fn wide_msd<K: KeyMap>(
    data: &mut [K::W],
    tmp: &mut [K::W],
    into_tmp: bool,
    parallel: bool,
    threads: usize,
) {
    let n = data.len();
    let Some(ends) = scatter::<K, false>(data, tmp, top_bits::<K::W>(n), parallel, threads) else {
        if into_tmp {
            tmp.copy_from_slice(data);
        }
        return;
    };
    let sort = |(t, d): (&mut [K::W], &mut [K::W])| {
        if t.len() > WIDE_MIN {
            wide_msd::<K>(t, d, !into_tmp, parallel, threads);
        } else {
            msd(t, d, !into_tmp);
        }
    };
    let parts = split(tmp, data, &ends);
    if parallel {
        parts.into_par_iter().for_each(sort);
    } else {
        parts.into_iter().for_each(sort);
    }
}

/// Sorts the keys in `data` into `data`, or into `tmp` when `into_tmp`,
/// using the other as scratch.
fn msd<W: Word>(data: &mut [W], tmp: &mut [W], into_tmp: bool) {
    let m = data.len();
    if W::net_fits(m) {
        if into_tmp {
            W::net_sort(Some(data), tmp);
        } else {
            W::net_sort(None, data);
        }
        return;
    }
    if m <= LEAF {
        insertion_sort(data);
        if into_tmp {
            tmp.copy_from_slice(data);
        }
        return;
    }
    let first = data[0];
    let diff = data.iter().fold(W::ZERO, |acc, &k| acc | (k ^ first));
    let Some(hb) = diff.highest_bit() else {
        if into_tmp {
            tmp.copy_from_slice(data);
        }
        return;
    };
    if W::NET_MAX > 0 {
        let (shift, bits) = digit_at(hb, net_bits::<W>(m));
        if u32::try_from(m).is_ok() {
            level_net::<W, u32>(data, tmp, shift, bits, into_tmp);
        } else {
            level_net::<W, usize>(data, tmp, shift, bits, into_tmp);
        }
        return;
    }
    let (shift, bits) = digit_at(hb, level_bits(m));
    // u32 offsets where the level's keys allow: the table takes half the
    // cache.
    if u32::try_from(m).is_ok() {
        level::<W, u32>(data, tmp, shift, bits);
    } else {
        level::<W, usize>(data, tmp, shift, bits);
    }
    // Every key is now at most a short bucket away from its place: one
    // insertion pass over the level finishes it, where the result goes.
    if into_tmp {
        insertion_sort(tmp);
    } else {
        insertion_copy(tmp, data);
    }
}

/// Scatters `data` into `tmp` by the digit `(shift, bits)`; returns each
/// bucket's end.
fn scatter_level<W: Word, O: Offset>(data: &[W], tmp: &mut [W], shift: u32, bits: u32) -> Vec<O> {
    let mask = (1usize << bits) - 1;
    let digit = |k: W| (k >> shift).low() & mask;
    let mut off = vec![O::ZERO; 1 << bits];
    for &k in data.iter() {
        off[digit(k)].bump();
    }
    let mut run = O::ZERO;
    for o in off.iter_mut() {
        let c = *o;
        *o = run;
        run.add(c);
    }
    for &k in data.iter() {
        let o = &mut off[digit(k)];
        tmp[o.get()] = k;
        o.bump();
    }
    // `off[d]` is now bucket d's end.
    off
}

/// One level of [`msd`] without sorting networks: scatters `data` into
/// `tmp` by the digit `(shift, bits)`, then sorts in place, in `tmp`, each
/// bucket too long to be left to the insertion pass.
fn level<W: Word, O: Offset>(data: &mut [W], tmp: &mut [W], shift: u32, bits: u32) {
    let mut start = 0;
    for end in scatter_level::<W, O>(data, tmp, shift, bits) {
        let end = end.get();
        if end - start > LEAF {
            msd(&mut tmp[start..end], &mut data[start..end], false);
        }
        start = end;
    }
}

/// One level of [`msd`] with sorting networks: scatters `data` into `tmp`
/// by the digit `(shift, bits)`, then sorts each bucket into `tmp` or, when
/// `!into_tmp`, back into `data` (most by one network).
fn level_net<W: Word, O: Offset>(
    data: &mut [W],
    tmp: &mut [W],
    shift: u32,
    bits: u32,
    into_tmp: bool,
) {
    let mut start = 0;
    for end in scatter_level::<W, O>(data, tmp, shift, bits) {
        let end = end.get();
        let (t, d) = (&mut tmp[start..end], &mut data[start..end]);
        match end - start {
            0 => {}
            1 if into_tmp => {}
            1 => d[0] = t[0],
            _ => msd(t, d, !into_tmp),
        }
        start = end;
    }
}

/// A count or offset in a digit table.
trait Offset: Copy {
    const ZERO: Self;
    fn get(self) -> usize;
    fn bump(&mut self);
    fn add(&mut self, other: Self);
}

/// An [`Offset`] impl for an unsigned integer type.
macro_rules! offset {
    ($t:ty) => {
        impl Offset for $t {
            const ZERO: $t = 0;
            #[inline(always)]
            fn get(self) -> usize {
                self as usize
            }
            #[inline(always)]
            fn bump(&mut self) {
                *self += 1;
            }
            #[inline(always)]
            fn add(&mut self, other: $t) {
                *self += other;
            }
        }
    };
}

offset!(u32);
offset!(usize);

/// Copies `src` into `dst` in sorted order by insertion: quick when every
/// key is near its place.
fn insertion_copy<W: Word>(src: &[W], dst: &mut [W]) {
    debug_assert_eq!(src.len(), dst.len());
    let Some(&first) = src.first() else { return };
    dst[0] = first;
    // The largest key so far, `dst[i - 1]`, kept in a register: a key not
    // below it (most keys) is stored without reading `dst` back.
    let mut last = first;
    for (i, &x) in src.iter().enumerate().skip(1) {
        if x >= last {
            dst[i] = x;
            last = x;
        } else {
            insert(dst, i, x);
        }
    }
}

/// Sorts a slice in place by insertion: for short slices, or slices whose
/// keys are each near their place.
fn insertion_sort<W: Word>(v: &mut [W]) {
    let Some(&first) = v.first() else { return };
    // As in `insertion_copy`: `last` is `v[i - 1]`.
    let mut last = first;
    for i in 1..v.len() {
        let x = v[i];
        if x >= last {
            last = x;
        } else {
            insert(v, i, x);
        }
    }
}

/// Puts `x`, which belongs before `v[i - 1]`, into the sorted `v[..i]`,
/// moving the larger keys up to `v[i]`.
#[inline(always)]
fn insert<W: Word>(v: &mut [W], i: usize, x: W) {
    let mut j = i;
    while j > 0 && v[j - 1] > x {
        v[j] = v[j - 1];
        j -= 1;
    }
    v[j] = x;
}
