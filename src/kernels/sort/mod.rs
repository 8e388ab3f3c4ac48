//! Radix sort: [`Sort`] (keys), [`SortPairs`] (keys with `u32` values) and
//! [`Argsort`] (the permutation), for `u32`, `i32`, `f32` and `f64` keys.
//! GPU twin: `shaders/sort.wgsl` (and `shaders/sort64.wgsl` for f64).
//!
//! # Order and semantics (both backends)
//! - Every sort is **stable** and orders by the key's bits through an
//!   order-preserving map to `u32` (`u64` for f64), so both backends give
//!   the same output,
//!   bit for bit, and the output is a permutation of the input's bits.
//! - `u32` and `i32` keys sort numerically.
//! - `f32` keys sort numerically with `-0.0` before `+0.0`, and **every NaN
//!   after `+Inf`**, whatever its sign or payload. Among NaNs the order is by
//!   bits: positive-sign NaNs by increasing payload, then negative-sign NaNs
//!   by decreasing payload. (The key is the usual sign-flip transform,
//!   rotated so the negative NaNs wrap past the positive ones: a bijection,
//!   so NaN payloads and signs come back unchanged.)
//! - `f64` keys sort the same way at 64 bits.
//! - Values ([`SortPairs`]) and indices ([`Argsort`]) of equal keys keep
//!   their input order.
//! - An empty input gives empty outputs and dispatches nothing.
//!
//! # Algorithms
//! - CPU, keys only ([`Sort`]), on builds with AVX-512F (`target-cpu=native`
//!   on a machine that has it): MSD radix sort whose buckets end in
//!   sorting networks (`msd.rs`, `net.rs`), at every size. One pass (in
//!   parallel from [`PARALLEL_SORT_THRESHOLD`] keys) scatters the keys by
//!   a top digit of up to 12 bits (9 past 4 MiB of keys) into buckets of
//!   about 64 `u32` or 32 `u64` keys; larger buckets (bunched keys, or
//!   larger inputs) get further levels in cache. A bucket of at most 256
//!   `u32` or 128 `u64` keys is sorted by a bitonic network in registers:
//!   no branch on the keys at all. Each level takes its digit just below the
//!   highest bit in which its keys differ, so shared bits cost nothing
//!   and a bucket of equal keys is done in one read. Keys alone need no
//!   stability (equal keys are equal bits).
//! - CPU, keys only, on builds without AVX-512F: the same MSD sort for f64
//!   keys from [`COMPARISON_SORT_THRESHOLD`] and 32-bit keys from
//!   [`MSD_MIN_KEYS_32`] up, with buckets of about 2^11 keys each finished
//!   by one more digit and an insertion pass.
//! - CPU, otherwise: LSD radix sort with 8-bit digits (four passes, eight
//!   for f64) on the rayon pool.
//!   One counting pass computes every digit's histogram at once (per chunk);
//!   a pass whose digit is the same for every key is skipped. Each pass
//!   scatters in parallel: every chunk writes to offsets it owns, computed
//!   from an exclusive scan of the (digit × chunk) counts, so the scatter is
//!   stable; it also counts the next pass's digits per destination chunk,
//!   so no later pass re-reads the keys just to count them. Below
//!   [`COMPARISON_SORT_THRESHOLD`] elements a comparison sort is faster and
//!   is used instead; below [`PARALLEL_SORT_THRESHOLD`] the radix sort runs
//!   on the calling thread.
//! - GPU: LSD radix sort, 8-bit digits, four passes, each a scatter that
//!   ranks a tile's keys stably in workgroup memory: four 2-bit split
//!   rounds, or, with subgroups of 8 or more, one sweep that finds equal
//!   digits by ballots (see the shader's header).
//! - GPU, input within one storage binding (under 2^30 keys; on a
//!   software adapter, at most 2^21): onesweep passes
//!   (Adinets & Merrill 2022). One dispatch counts every key's four digits;
//!   then each pass is one dispatch, whose tiles, taken in start order from
//!   a counter, publish their digit counts and find each digit's keys in
//!   earlier tiles by decoupled look-back. WebGPU promises no forward
//!   progress between workgroups, so a tile that finds a predecessor
//!   unpublished after `SPIN` reads counts that tile's keys itself
//!   (Levien's decoupled fallback): correct on any scheduler. Five
//!   dispatches in all; on lavapipe as fast as the three-dispatch passes
//!   below (BENCHMARKS.md), on hardware not yet measured.
//!   `TANDEM_SORT_ONESWEEP=0` turns them off and `TANDEM_SORT_SPIN=0`
//!   forces the fallback at every step (`tests/sort_onesweep.rs`).
//! - GPU, otherwise: four passes of per-workgroup digit histograms, an
//!   exclusive scan of the (digit × workgroup) table (one workgroup up to
//!   2^16 keys, reduce-then-scan past that), and the scatter. An input larger than one storage
//!   binding runs each pass in chunks of whole tiles, and each chunk's
//!   scatter once per output window of one binding, writing only the slots
//!   in it: past one binding the scatter's work grows with the number of
//!   windows. The digit table
//!   (a quarter of the keys' bytes) is bound whole up to one binding (keys
//!   up to about four bindings); past that each chunk keeps its part of the
//!   table, scanned on its own, and two small dispatches per pass give each
//!   chunk's digits their bases across chunks. Only keys past `u32::MAX / 2`
//!   (u32 slot indices) return [`Error::TooLarge`] (and `Auto` sorts them
//!   on the CPU).
//! - GPU, f64 keys: two of those sorts on 32-bit words. Each key's 64-bit
//!   order-preserving image is split into a low and a high word; the low
//!   words sort carrying the input indices, the high words (gathered
//!   through that permutation) sort carrying it, and keys and values are
//!   gathered through the result: eight passes carrying values, plus three
//!   or four gathers. The gathers read at random; past one storage binding
//!   each runs once per output chunk and source window. Like every f64
//!   kernel it needs
//!   [`GpuFeatures::f64`](crate::gpu::GpuFeatures::f64), although it does
//!   no f64 arithmetic.

use std::ops::Range;

use rayon::prelude::*;

mod msd;
mod net;

use crate::buffer::{Buffer, Element, ElementType};
use crate::cpu::{Cpu, pool};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DeviceCopy, Dispatch, Gpu, GpuInfo, ShaderSpec, shader};
use crate::kernel::{Kernel, Work, typed_name};

shader! {
    "sort.wgsl",
    /// `sort.wgsl`'s uniform block: `n` keys (sort passes) or table entries
    /// (scans), `groups` the workgroups that hold real tiles, `shift` the
    /// bit offset of this pass's digit, `flags` the `FLAG_*` bits; for the
    /// sort passes, the dispatch's tiles `g0..g_end` (its input chunk) and
    /// the output slots `out_lo..out_hi` it writes (its output window).
    struct Params {
        n: u32, groups: u32, shift: u32, flags: u32,
        g0: u32, g_end: u32, out_lo: u32, out_hi: u32,
    }
    /// Keys one workgroup handles, and table entries one scan workgroup
    /// handles.
    const TILE: usize = 1024;
    /// `Params::flags`: `keys_in` holds element bits: transform on read.
    const FLAG_FIRST: u32 = 1;
    /// `Params::flags`: write element bits: transform back on write.
    const FLAG_LAST: u32 = 2;
    /// `Params::flags`: the values are the global indices (argsort).
    const FLAG_GEN_INDEX: u32 = 4;
    /// `Params::flags`: `scan_down` adds the scanned block sum.
    const FLAG_HAS_SUMS: u32 = 8;
    /// `Params::flags`: the digit table is in parts, one per input chunk
    /// (it does not fit one binding).
    const FLAG_LOCAL: u32 = 16;
}

/// `shaders/sort64.wgsl`: the word kernels of the f64 GPU sort.
pub(crate) mod wide {
    use crate::gpu::shader;

    shader! {
        "sort64.wgsl",
        /// `sort64.wgsl`'s uniform block: the elements of this dispatch's
        /// output chunk, a gather's source window `src_lo..src_hi`, and the
        /// u32 words of a gathered element (1, or 2 for f64).
        struct Params { n: u32, src_lo: u32, src_hi: u32, words: u32 }
    }
}

/// Below this many elements the CPU sorts with a comparison sort (the
/// standard library's), except keys-only sorts on AVX-512 builds (sorting
/// networks, see the module docs): on short inputs the radix passes'
/// 256-bucket histograms and offset scans cost more than they save. The value is the
/// usual crossover for 8-bit LSD sorts, not yet calibrated on this machine.
pub const COMPARISON_SORT_THRESHOLD: usize = 512;

/// From this many elements the CPU radix sort runs its passes on the rayon
/// pool; below, on the calling thread.
pub const PARALLEL_SORT_THRESHOLD: usize = 1 << 16;

/// On builds without AVX-512F, from this many 32-bit keys up, the keys-only
/// CPU sort ([`Sort`]) runs MSD radix passes down to cache-sized buckets
/// instead of the LSD passes: below, the LSD sort's four passes run in the
/// last-level cache and win. (With AVX-512F the MSD sort's sorting-network
/// leaves win at every size: 1.05–1.95× the LSD sort from 2^14 to 2^22
/// keys.)
/// Measured on a 2-core Zen 5 VM with 32 MiB of L3: even or LSD up to
/// 1.35× faster from 2^18 to 2^22 keys, MSD 1.08–1.24× faster at 2^23 and
/// 1.9× at 2^24 (before the networks). f64 keys (eight LSD passes) take
/// the MSD sort from [`COMPARISON_SORT_THRESHOLD`] up.
pub const MSD_MIN_KEYS_32: usize = 1 << 23;

/// Bits per digit.
const RADIX_BITS: u32 = 8;
/// Buckets per digit.
const BUCKETS: usize = 1 << RADIX_BITS;
/// Digits of a 32-bit key.
const PASSES: usize = 4;
/// Digits of the widest key (f64's 64 bits).
const MAX_PASSES: usize = 8;
/// Fewest elements a parallel chunk gets.
const MIN_CHUNK: usize = 1 << 14;

/// Sorts keys, stably, in the order the [module docs](self) define.
///
/// Implements `Kernel<&Buffer<T>>` with output `Buffer<T>`, for `T` in
/// `u32`, `i32`, `f32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sort;

/// Sorts keys and carries a `u32` value with each, stably: values of equal
/// keys keep their input order.
///
/// Implements `Kernel<(&Buffer<T>, &Buffer<u32>)>` with output
/// `(sorted keys, values in the keys' new order)`. Inputs of different
/// lengths give [`Error::LengthMismatch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SortPairs;

/// The indices that sort the keys, stably: `out[i]` is the input index of
/// the `i`-th smallest key, equal keys in input order.
///
/// Implements `Kernel<&Buffer<T>>` with output `Buffer<u32>`; more than
/// `u32::MAX` elements give [`Error::TooLarge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Argsort;

/// The work of a radix sort of `n` keys of `key_bytes` bytes carrying
/// `arrays - 1` value arrays (`u32`): one counting read of the keys, then
/// per 8-bit digit (four passes for 32-bit keys, eight for f64) a read and
/// a write of the keys and of every value array: an LSD sort's traffic,
/// the GPU's and, for pairs and argsort, the CPU's. The CPU's keys-only MSD
/// sort (`msd.rs`) moves less: counting its passes over memory (a count, a
/// scatter, each bucket read and written once more), 20 of the 36
/// B/element for 32-bit keys and 40 of the 136 for f64. The work of one
/// kernel is the same on both backends, and the cost model's curves are
/// measured.
fn sort_work(n: usize, key_bytes: usize, arrays: u64) -> Work {
    let n = n as u64;
    let key = key_bytes as u64;
    let passes = key;
    let per_pass = n * (key + 4 * (arrays - 1));
    Work {
        elements: n,
        bytes_read: n * key + passes * per_pass,
        bytes_written: passes * per_pass,
        // Per key and pass: digit extract, count, offset bump, address.
        flops: n * passes * 4,
        host_result_bytes: 0,
    }
}

impl<T: Element> Kernel<&Buffer<T>> for Sort {
    type Out = Buffer<T>;

    fn name(&self) -> &'static str {
        typed_name::<T>("sort", "sort_f64")
    }

    fn work(&self, keys: &&Buffer<T>) -> Work {
        sort_work(keys.len(), size_of::<T>(), 1)
    }

    fn run_cpu(&self, cpu: &Cpu, keys: &Buffer<T>) -> Result<Buffer<T>> {
        let data = cpu.host(keys)?;
        let (sorted, _) = cpu_sort::<T>(cpu, &data, Values::None);
        Ok(Buffer::from(sorted))
    }

    fn run_gpu(&self, gpu: &Gpu, keys: &Buffer<T>) -> Result<Buffer<T>> {
        let n = keys.len();
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        let (k, _) = gpu_sort(
            gpu,
            Kernel::<&Buffer<T>>::name(self),
            keys,
            GpuValues::None,
            true,
        )?;
        Ok(gpu.into_buffer(k.expect("keys were asked for"), n))
    }
}

impl<T: Element> Kernel<(&Buffer<T>, &Buffer<u32>)> for SortPairs {
    type Out = (Buffer<T>, Buffer<u32>);

    fn name(&self) -> &'static str {
        typed_name::<T>("sort_pairs", "sort_pairs_f64")
    }

    fn work(&self, (keys, _): &(&Buffer<T>, &Buffer<u32>)) -> Work {
        sort_work(keys.len(), size_of::<T>(), 2)
    }

    fn run_cpu(
        &self,
        cpu: &Cpu,
        (keys, values): (&Buffer<T>, &Buffer<u32>),
    ) -> Result<(Buffer<T>, Buffer<u32>)> {
        Error::check_same_len("sort_pairs", keys.len(), values.len())?;
        let (k, v) = (cpu.host(keys)?, cpu.host(values)?);
        let (sk, sv) = cpu_sort::<T>(cpu, &k, Values::Slice(&v[..]));
        Ok((
            Buffer::from(sk),
            Buffer::from(sv.expect("values were given")),
        ))
    }

    fn run_gpu(
        &self,
        gpu: &Gpu,
        (keys, values): (&Buffer<T>, &Buffer<u32>),
    ) -> Result<(Buffer<T>, Buffer<u32>)> {
        Error::check_same_len("sort_pairs", keys.len(), values.len())?;
        let n = keys.len();
        if n == 0 {
            return Ok((Buffer::from(Vec::new()), Buffer::from(Vec::new())));
        }
        let (k, v) = gpu_sort(
            gpu,
            Kernel::<(&Buffer<T>, &Buffer<u32>)>::name(self),
            keys,
            GpuValues::Buffer(values),
            true,
        )?;
        let (k, v) = (
            k.expect("keys were asked for"),
            v.expect("values were given"),
        );
        Ok((gpu.into_buffer(k, n), gpu.into_buffer(v, n)))
    }
}

impl<T: Element> Kernel<&Buffer<T>> for Argsort {
    type Out = Buffer<u32>;

    fn name(&self) -> &'static str {
        typed_name::<T>("argsort", "argsort_f64")
    }

    fn work(&self, keys: &&Buffer<T>) -> Work {
        // Keys and indices move; the indices of the first pass are made,
        // not read.
        let mut w = sort_work(keys.len(), size_of::<T>(), 2);
        w.bytes_read -= keys.len() as u64 * 4;
        w
    }

    fn run_cpu(&self, cpu: &Cpu, keys: &Buffer<T>) -> Result<Buffer<u32>> {
        check_indices::<T>("argsort", keys.len())?;
        let data = cpu.host(keys)?;
        let (sk, idx) = cpu_sort::<T>(cpu, &data, Values::Indices);
        pool::give_back(sk);
        Ok(Buffer::from(idx.expect("indices were asked for")))
    }

    fn run_gpu(&self, gpu: &Gpu, keys: &Buffer<T>) -> Result<Buffer<u32>> {
        check_indices::<T>("argsort", keys.len())?;
        let n = keys.len();
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        let (_, v) = gpu_sort(
            gpu,
            Kernel::<&Buffer<T>>::name(self),
            keys,
            GpuValues::Indices,
            false,
        )?;
        Ok(gpu.into_buffer(v.expect("indices were asked for"), n))
    }
}

/// Indices are `u32`: more than `u32::MAX` elements cannot be numbered.
fn check_indices<T: Element>(kernel: &'static str, n: usize) -> Result<()> {
    if n as u64 > u64::from(u32::MAX) {
        return Err(Error::TooLarge {
            kernel,
            bytes: n as u64 * size_of::<T>() as u64,
            limit: u64::from(u32::MAX) * size_of::<T>() as u64,
            what: "u32 indices (at most u32::MAX elements)",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- keys ----

/// A key word the CPU radix sort works on: `u32` for the 32-bit types,
/// `u64` for f64 (eight 8-bit digits).
trait Word:
    Copy
    + Ord
    + Send
    + Sync
    + bytemuck::Pod
    + std::ops::BitOr<Output = Self>
    + std::ops::BitXor<Output = Self>
    + std::ops::Shr<u32, Output = Self>
    + 'static
{
    /// 8-bit digits in a word.
    const DIGITS: usize = size_of::<Self>();
    /// The zero word.
    const ZERO: Self;
    /// The low bits, as many as a `usize` holds.
    fn low(self) -> usize;
    /// The index of the highest set bit; `None` for zero.
    fn highest_bit(self) -> Option<u32>;
    /// The 8-bit digit at `shift`.
    #[inline(always)]
    fn digit(self, shift: u32) -> usize {
        (self >> shift).low() & 0xff
    }
    /// A scratch vector of `n` words (contents unspecified), from the pool.
    fn take(n: usize) -> Vec<Self>;
    /// Returns a scratch vector to the pool.
    fn give_back(v: Vec<Self>);
    /// Most keys [`Word::net_sort`] sorts: 0 on builds without its
    /// sorting networks (`net.rs`).
    const NET_MAX: usize;
    /// Sorts `src` into `dst` (same length, at most [`Word::NET_MAX`]), or
    /// `dst` in place when `src` is `None`, by a sorting network.
    fn net_sort(src: Option<&[Self]>, dst: &mut [Self]);
    /// Whether [`Word::net_sort`] takes `m` keys: never on builds without
    /// the networks, whatever `m`.
    #[inline(always)]
    fn net_fits(m: usize) -> bool {
        Self::NET_MAX > 0 && m <= Self::NET_MAX
    }
}

/// The [`Word`] items that differ between `u32` and `u64` only in the type,
/// the most keys of a sorting network and the network's function.
macro_rules! word_bits {
    ($t:ty, $net_max:literal, $net:ident) => {
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
        const NET_MAX: usize = $net_max;
        #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
        const NET_MAX: usize = 0;
        fn net_sort(src: Option<&[$t]>, dst: &mut [$t]) {
            #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
            net::$net(src, dst);
            #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
            unreachable!("no sorting network on this build ({src:?}, {dst:?})");
        }
        const ZERO: $t = 0;
        #[inline(always)]
        fn low(self) -> usize {
            self as usize
        }
        #[inline(always)]
        fn highest_bit(self) -> Option<u32> {
            self.checked_ilog2()
        }
    };
}

impl Word for u32 {
    word_bits!(u32, 256, sort_u32);
    fn take(n: usize) -> Vec<u32> {
        pool::take::<u32>(n)
    }
    fn give_back(v: Vec<u32>) {
        pool::give_back(v)
    }
}

impl Word for u64 {
    word_bits!(u64, 128, sort_u64);
    fn take(n: usize) -> Vec<u64> {
        // Same size and alignment: the pool's f64 vectors serve as words.
        bytemuck::allocation::cast_vec(pool::take::<f64>(n))
    }
    fn give_back(v: Vec<u64>) {
        pool::give_back(bytemuck::allocation::cast_vec::<u64, f64>(v))
    }
}

/// The order-preserving map of an element type's bits to keys, and back.
/// `shaders/sort.wgsl` has the same functions (`to_key`, `from_key`).
trait KeyMap: Copy + Send + Sync + 'static {
    /// The word keys (and element bits) are held in.
    type W: Word;
    /// Whether `key` is the identity (no transform on read or write).
    const IDENTITY: bool;
    fn key(bits: Self::W) -> Self::W;
    fn bits(key: Self::W) -> Self::W;
}

#[derive(Clone, Copy)]
struct UnsignedKey;
#[derive(Clone, Copy)]
struct SignedKey;
#[derive(Clone, Copy)]
struct FloatKey;

impl KeyMap for UnsignedKey {
    type W = u32;
    const IDENTITY: bool = true;
    #[inline(always)]
    fn key(bits: u32) -> u32 {
        bits
    }
    #[inline(always)]
    fn bits(key: u32) -> u32 {
        key
    }
}

impl KeyMap for SignedKey {
    type W = u32;
    const IDENTITY: bool = false;
    #[inline(always)]
    fn key(bits: u32) -> u32 {
        bits ^ 0x8000_0000
    }
    #[inline(always)]
    fn bits(key: u32) -> u32 {
        key ^ 0x8000_0000
    }
}

/// Rotation that moves negative NaNs (the lowest sign-flip keys) past the
/// positive ones.
const NAN_ROTATION: u32 = 0x007f_ffff;

impl KeyMap for FloatKey {
    type W = u32;
    const IDENTITY: bool = false;
    #[inline(always)]
    fn key(bits: u32) -> u32 {
        let s = if bits & 0x8000_0000 != 0 {
            !bits
        } else {
            bits | 0x8000_0000
        };
        s.wrapping_sub(NAN_ROTATION)
    }
    #[inline(always)]
    fn bits(key: u32) -> u32 {
        let s = key.wrapping_add(NAN_ROTATION);
        if s & 0x8000_0000 != 0 {
            s & 0x7fff_ffff
        } else {
            !s
        }
    }
}

/// The f64 key: [`FloatKey`]'s transform at 64 bits, with the same NaN
/// rotation (every NaN after `+Inf`, positive NaNs by payload, then
/// negative ones).
#[derive(Clone, Copy)]
struct F64Key;

/// [`NAN_ROTATION`] at 64 bits.
const NAN_ROTATION_64: u64 = 0x000f_ffff_ffff_ffff;

impl KeyMap for F64Key {
    type W = u64;
    const IDENTITY: bool = false;
    #[inline(always)]
    fn key(bits: u64) -> u64 {
        let s = if bits >> 63 != 0 {
            !bits
        } else {
            bits | 1 << 63
        };
        s.wrapping_sub(NAN_ROTATION_64)
    }
    #[inline(always)]
    fn bits(key: u64) -> u64 {
        let s = key.wrapping_add(NAN_ROTATION_64);
        if s >> 63 != 0 { s & !(1 << 63) } else { !s }
    }
}

// ----------------------------------------------------------------- CPU ----

/// What travels with the keys on the CPU.
#[derive(Clone, Copy)]
enum Values<'a> {
    None,
    Slice(&'a [u32]),
    /// The input indices (argsort), made in the first pass.
    Indices,
}

/// Sorts `keys` of type `T`; returns the sorted keys and the values in the
/// same order (when asked for).
fn cpu_sort<T: Element>(cpu: &Cpu, keys: &[T], values: Values<'_>) -> (Vec<T>, Option<Vec<u32>>) {
    fn go<K: KeyMap, T: Element>(
        cpu: &Cpu,
        keys: &[T],
        values: Values<'_>,
    ) -> (Vec<T>, Option<Vec<u32>>) {
        let src: &[K::W] = bytemuck::cast_slice(keys);
        if matches!(values, Values::None) && msd::wins::<K::W>(src.len()) {
            return (
                bytemuck::allocation::cast_vec(msd::sort_keys::<K>(cpu, src)),
                None,
            );
        }
        let (k, v) = radix_sort::<K>(cpu, src, values);
        (bytemuck::allocation::cast_vec(k), v)
    }
    match T::TYPE {
        ElementType::U32 => go::<UnsignedKey, T>(cpu, keys, values),
        ElementType::I32 => go::<SignedKey, T>(cpu, keys, values),
        ElementType::F32 => go::<FloatKey, T>(cpu, keys, values),
        ElementType::F64 => go::<F64Key, T>(cpu, keys, values),
    }
}

type Histogram = [u32; BUCKETS];

/// A raw pointer that parallel scatter tasks share: each writes only the
/// slots its precomputed offsets own.
struct SharedOut<W>(*mut W);

impl<W> Clone for SharedOut<W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W> Copy for SharedOut<W> {}

// SAFETY: the pointer is only written through at indices that one task owns
// (disjoint offset ranges from the exclusive scan in `radix_sort`), and the
// allocation outlives the scoped parallel loop that uses it.
unsafe impl<W: Send> Send for SharedOut<W> {}
// SAFETY: as above: no two tasks write the same index, none reads.
unsafe impl<W: Sync> Sync for SharedOut<W> {}

fn radix_sort<K: KeyMap>(
    cpu: &Cpu,
    src: &[K::W],
    values: Values<'_>,
) -> (Vec<K::W>, Option<Vec<u32>>) {
    let n = src.len();
    if n < COMPARISON_SORT_THRESHOLD {
        return comparison_sort::<K>(src, values);
    }
    // Chunks are a power of two long, so a position's chunk is a shift.
    let (chunk, chunk_shift) = if n < PARALLEL_SORT_THRESHOLD {
        (n, usize::BITS - 1)
    } else {
        let c = n
            .div_ceil(cpu.threads() * 4)
            .max(MIN_CHUNK)
            .next_power_of_two();
        (c, c.trailing_zeros())
    };
    let ranges: Vec<Range<usize>> = (0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect();
    let parallel = ranges.len() > 1;

    // One counting pass: every digit's histogram, per chunk.
    let digits = K::W::DIGITS;
    let count_all = |r: &Range<usize>| {
        let mut h = [[0u32; BUCKETS]; MAX_PASSES];
        for &b in &src[r.clone()] {
            let k = K::key(b);
            for (p, h) in h.iter_mut().enumerate().take(K::W::DIGITS) {
                h[k.digit(p as u32 * RADIX_BITS)] += 1;
            }
        }
        h
    };
    let per_chunk: Vec<[Histogram; MAX_PASSES]> = if parallel {
        cpu.install(|| ranges.par_iter().map(count_all).collect())
    } else {
        ranges.iter().map(count_all).collect()
    };
    // A pass is needed unless one bucket holds every key.
    let passes: Vec<usize> = (0..digits)
        .filter(|&p| {
            let mut total = [0u64; BUCKETS];
            for h in &per_chunk {
                for (t, &c) in total.iter_mut().zip(&h[p]) {
                    *t += u64::from(c);
                }
            }
            !total.contains(&(n as u64))
        })
        .collect();

    if passes.is_empty() {
        // Every key is the same: the input order is the sorted order.
        let keys = src.to_vec();
        let vals = match values {
            Values::None => None,
            Values::Slice(v) => Some(v.to_vec()),
            Values::Indices => Some((0..n as u32).collect()),
        };
        return (keys, vals);
    }

    let has_values = !matches!(values, Values::None);
    // `cur` holds what the previous pass wrote, `next` receives this pass.
    let mut cur = K::W::take(n);
    let mut next = K::W::take(n);
    let (mut vcur, mut vnext) = if has_values {
        (pool::take::<u32>(n), pool::take::<u32>(n))
    } else {
        (Vec::new(), Vec::new())
    };
    let mut hists: Vec<Histogram> = per_chunk.iter().map(|h| h[passes[0]]).collect();
    for (step, &pass) in passes.iter().enumerate() {
        let first = step == 0;
        let last = step + 1 == passes.len();
        let shift = pass as u32 * RADIX_BITS;
        let keys_in: &[K::W] = if first { src } else { &cur };
        // The scatter also counts the next pass's digits per destination
        // chunk, which saves that pass a read of every key.
        let next_shift = passes.get(step + 1).map(|&p| p as u32 * RADIX_BITS);
        // Exclusive scan, digit-major then chunk: chunk c's keys of digit d
        // go to offsets[c][d] onward, after every smaller digit and after
        // the same digit's keys of earlier chunks (stable).
        let mut offsets = vec![[0usize; BUCKETS]; ranges.len()];
        let mut run = 0usize;
        for d in 0..BUCKETS {
            for (c, h) in hists.iter().enumerate() {
                offsets[c][d] = run;
                run += h[d] as usize;
            }
        }
        debug_assert_eq!(run, n);
        let kout = SharedOut(next.as_mut_ptr());
        let vout = SharedOut(vnext.as_mut_ptr());
        let vals_in: Option<&[u32]> = match (values, first) {
            (Values::None, _) | (Values::Indices, true) => None,
            (Values::Slice(v), true) => Some(v),
            (_, false) => Some(&vcur),
        };
        let task = |(r, off): (&Range<usize>, &mut [usize; BUCKETS])| {
            let keys = &keys_in[r.clone()];
            let vals = match (has_values, vals_in) {
                (false, _) => None,
                (true, Some(v)) => Some((ValueSource::Slice(&v[r.clone()]), vout)),
                (true, None) => Some((ValueSource::Index(r.start as u32), vout)),
            };
            let mut counts = match next_shift {
                Some(_) => vec![[0u32; BUCKETS]; ranges.len()],
                None => Vec::new(),
            };
            let next = Next {
                shift: next_shift.unwrap_or(0),
                chunk_shift,
                counts: &mut counts,
            };
            scatter_dispatch::<K>(keys, off, shift, (first, last), kout, vals, next);
            counts
        };
        let per_task: Vec<Vec<Histogram>> = if parallel {
            cpu.install(|| {
                ranges
                    .par_iter()
                    .zip(offsets.par_iter_mut())
                    .map(task)
                    .collect()
            })
        } else {
            ranges.iter().zip(offsets.iter_mut()).map(task).collect()
        };
        if next_shift.is_some() {
            for (c, h) in hists.iter_mut().enumerate() {
                *h = [0; BUCKETS];
                for t in &per_task {
                    for (a, b) in h.iter_mut().zip(&t[c]) {
                        *a += b;
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        std::mem::swap(&mut vcur, &mut vnext);
    }
    K::W::give_back(next);
    if has_values {
        pool::give_back(vnext);
        (cur, Some(vcur))
    } else {
        (cur, None)
    }
}

/// The next pass's digit counts a scatter task gathers: `counts[chunk]`,
/// where a position's chunk is `position >> chunk_shift`. Empty `counts`:
/// there is no next pass.
struct Next<'a> {
    shift: u32,
    chunk_shift: u32,
    counts: &'a mut [Histogram],
}

/// Where a scatter task's values come from.
#[derive(Clone, Copy)]
enum ValueSource<'a> {
    Slice(&'a [u32]),
    /// Indices counting up from this one.
    Index(u32),
}

/// Picks the monomorphized scatter loop for this pass.
fn scatter_dispatch<K: KeyMap>(
    keys: &[K::W],
    off: &mut [usize; BUCKETS],
    shift: u32,
    (first, last): (bool, bool),
    kout: SharedOut<K::W>,
    vals: Option<(ValueSource<'_>, SharedOut<u32>)>,
    next: Next<'_>,
) {
    macro_rules! go {
        ($f:literal, $l:literal) => {
            match vals {
                None => scatter::<K, $f, $l>(keys, off, shift, kout, |_| 0, None, next),
                Some((ValueSource::Slice(v), vo)) => {
                    scatter::<K, $f, $l>(keys, off, shift, kout, |j| v[j], Some(vo), next)
                }
                Some((ValueSource::Index(base), vo)) => scatter::<K, $f, $l>(
                    keys,
                    off,
                    shift,
                    kout,
                    |j| base + j as u32,
                    Some(vo),
                    next,
                ),
            }
        };
    }
    // A key map that is the identity needs no first/last variants.
    match (first && !K::IDENTITY, last && !K::IDENTITY) {
        (false, false) => go!(false, false),
        (true, false) => go!(true, false),
        (false, true) => go!(false, true),
        (true, true) => go!(true, true),
    }
}

/// The stable scatter of one chunk for one digit: each key (and value) goes
/// to the next free slot of its digit, `off[digit]`.
#[inline(always)]
fn scatter<K: KeyMap, const FIRST: bool, const LAST: bool>(
    keys: &[K::W],
    off: &mut [usize; BUCKETS],
    shift: u32,
    kout: SharedOut<K::W>,
    value: impl Fn(usize) -> u32,
    vout: Option<SharedOut<u32>>,
    next: Next<'_>,
) {
    let counting = !next.counts.is_empty();
    for (j, &b) in keys.iter().enumerate() {
        let k = if FIRST { K::key(b) } else { b };
        let d = k.digit(shift);
        let o = off[d];
        off[d] = o + 1;
        if counting {
            next.counts[o >> next.chunk_shift][k.digit(next.shift)] += 1;
        }
        let out = if LAST { K::bits(k) } else { k };
        // SAFETY: `o` lies in this chunk's range for digit `d`, from the
        // exclusive scan of exact counts of these very keys: it is below n
        // (the output's length) and no other task writes it.
        unsafe { kout.0.add(o).write(out) };
        if let Some(vo) = vout {
            // SAFETY: as above; the value buffer has length n too.
            unsafe { vo.0.add(o).write(value(j)) };
        }
    }
}

/// The small-input path: a comparison sort of the keys (stable with values).
fn comparison_sort<K: KeyMap>(src: &[K::W], values: Values<'_>) -> (Vec<K::W>, Option<Vec<u32>>) {
    let vals: Option<Vec<u32>> = match values {
        Values::None => None,
        Values::Slice(v) => Some(v.to_vec()),
        Values::Indices => Some((0..src.len() as u32).collect()),
    };
    match vals {
        None => {
            // Equal keys are equal bits: an unstable sort is as good.
            let mut keys: Vec<K::W> = src.iter().map(|&b| K::key(b)).collect();
            keys.sort_unstable();
            keys.iter_mut().for_each(|k| *k = K::bits(*k));
            (keys, None)
        }
        Some(v) => {
            let mut pairs: Vec<(K::W, u32)> =
                src.iter().zip(&v).map(|(&b, &v)| (K::key(b), v)).collect();
            pairs.sort_by_key(|p| p.0);
            let keys = pairs.iter().map(|p| K::bits(p.0)).collect();
            let vals = pairs.iter().map(|p| p.1).collect();
            (keys, Some(vals))
        }
    }
}

// ----------------------------------------------------------------- GPU ----

/// What travels with the keys on the GPU.
#[derive(Clone, Copy)]
enum GpuValues<'a> {
    None,
    Buffer(&'a Buffer<u32>),
    Indices,
}

/// One dispatch to encode: entry point, uniform words, storage bindings
/// `(slot, buffer id, byte range)`, workgroups.
struct Step {
    entry: usize,
    params: Params,
    binds: Vec<(u32, usize, Range<u64>)>,
    groups: u32,
}

const ENTRIES: [&str; 11] = [
    "histogram",
    "scan_reduce",
    "scan_down",
    "scatter_keys",
    "scatter_pairs",
    "scan_one",
    "chunk_heads",
    "chunk_bases",
    "onesweep_hist",
    "onesweep_keys",
    "onesweep_pairs",
];
/// [`ENTRIES`] where [`sort_subgroups`] holds.
const ENTRIES_SG: [&str; 11] = [
    "histogram",
    "scan_reduce",
    "scan_down",
    "scatter_keys_sg",
    "scatter_pairs_sg",
    "scan_one",
    "chunk_heads",
    "chunk_bases",
    "onesweep_hist",
    "onesweep_keys_sg",
    "onesweep_pairs_sg",
];
/// Whether the scatters rank with subgroups (`scatter_*_sg`): the device
/// has SUBGROUP, with subgroups of at least 8 invocations (their per-subgroup
/// digit counts are sized for at most `SWG / 8` subgroups).
fn sort_subgroups(info: &GpuInfo) -> bool {
    info.features.subgroups && info.subgroup_sizes.0 >= 8
}

const E_HIST: usize = 0;
const E_REDUCE: usize = 1;
const E_DOWN: usize = 2;
const E_KEYS: usize = 3;
const E_PAIRS: usize = 4;
const E_ONE: usize = 5;
const E_HEADS: usize = 6;
const E_BASES: usize = 7;
const E_OS_HIST: usize = 8;
const E_OS_KEYS: usize = 9;
const E_OS_PAIRS: usize = 10;
/// Most table entries `scan_one` scans in one workgroup (64 an invocation,
/// the table of 2^16 keys): one dispatch where the reduce-then-scan takes
/// three. On lavapipe the sort of 2^16 keys went from 6.6–6.7 ms to
/// 5.6–5.7 ms (best of 22 calls, alternated runs): each of those small
/// dispatches cost about 0.1 ms.
const ONE_SCAN_MAX: usize = 64 * 256;

/// Buffer ids in a sort's list of device copies.
const KEYS_IN: usize = 0;
const KEYS_B: usize = 1;
const KEYS_C: usize = 2;
const VALS_IN: usize = 3;
const VALS_B: usize = 4;
const VALS_C: usize = 5;
const TABLE: usize = 6;
const DUMMY: usize = 7;
/// Each chunk's digit rows for `chunk_heads` / `chunk_bases` (a table in
/// parts only).
const HEADS: usize = 8;
/// The onesweep passes' look-back entries and global digit counts.
const STATUS: usize = 9;
const GHIST: usize = 10;
const SUMS: usize = 11;

/// The onesweep passes' `ghist`: each pass's global digit counts, then its
/// tile counter.
const GHIST_WORDS: usize = PASSES * BUCKETS + PASSES;

/// Most tiles a software adapter sorts by onesweep passes (2^21 keys):
/// see [`onesweep_spin`].
const ONESWEEP_SOFTWARE_TILES: usize = 1 << 11;

/// Keys below which the onesweep passes' 30-bit look-back counts hold.
const ONESWEEP_MAX_KEYS: usize = 1 << 30;

/// The look-back's reads of an unpublished entry before it counts that
/// tile's keys itself, when the sort of `n` words in `chunks` input chunks
/// runs as onesweep passes (`shaders/sort.wgsl`'s `onesweep` section): an
/// input of one chunk, under [`ONESWEEP_MAX_KEYS`], whose look-back entries
/// (a word per digit, tile and pass) fit one binding, of at most
/// [`ONESWEEP_SOFTWARE_TILES`] tiles on a software adapter. `None`: a histogram,
/// a table scan and a scatter per pass. `TANDEM_SORT_ONESWEEP=0` turns
/// the onesweep passes off and `TANDEM_SORT_SPIN` sets the reads (`0`:
/// always count, quadratic in tiles), so tests on any adapter reach the
/// other path and the fallback.
fn onesweep_spin(info: &GpuInfo, n: usize, chunks: usize) -> Option<u32> {
    let var = |name| std::env::var(name).ok();
    if var("TANDEM_SORT_ONESWEEP").as_deref() == Some("0") {
        return None;
    }
    let tiles = n.div_ceil(TILE);
    let status_bytes = (tiles * PASSES * BUCKETS * 4) as u64;
    if chunks != 1 || n >= ONESWEEP_MAX_KEYS || status_bytes > info.chunk_bytes {
        return None;
    }
    // llvmpipe ends a shader's loops once they have run 65535 iterations
    // between them; the fast walk takes at most 8192 and the slow walk
    // about 25 a tile it steps back over.
    if info.is_software && tiles > ONESWEEP_SOFTWARE_TILES {
        return None;
    }
    Some(
        var("TANDEM_SORT_SPIN")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024),
    )
}

/// Appends the steps of an exclusive scan of `len` u32s in buffer `data`,
/// using the block-sum buffers `SUMS + level ..`.
fn scan_steps(steps: &mut Vec<Step>, data: usize, base: u64, len: usize, level: usize) {
    let bytes = |len: usize| base..base + (len as u64 * 4).max(4);
    let sums_bytes = |len: usize| 0..(len as u64 * 4).max(4);
    if level == 0 && len <= ONE_SCAN_MAX && len > TILE {
        steps.push(Step {
            entry: E_ONE,
            params: Params {
                n: len as u32,
                groups: 1,
                ..Params::default()
            },
            binds: vec![(5, data, bytes(len))],
            groups: 1,
        });
        return;
    }
    if len <= TILE {
        steps.push(Step {
            entry: E_DOWN,
            params: Params {
                n: len as u32,
                groups: 1,
                ..Params::default()
            },
            binds: vec![(5, data, bytes(len)), (6, DUMMY, 0..4)],
            groups: 1,
        });
        return;
    }
    let groups = len.div_ceil(TILE);
    let sums = SUMS + level;
    steps.push(Step {
        entry: E_REDUCE,
        params: Params {
            n: len as u32,
            groups: groups as u32,
            ..Params::default()
        },
        binds: vec![(5, data, bytes(len)), (6, sums, sums_bytes(groups))],
        groups: groups as u32,
    });
    scan_steps(steps, sums, 0, groups, level + 1);
    steps.push(Step {
        entry: E_DOWN,
        params: Params {
            n: len as u32,
            groups: groups as u32,
            flags: FLAG_HAS_SUMS,
            ..Params::default()
        },
        binds: vec![(5, data, bytes(len)), (6, sums, sums_bytes(groups))],
        groups: groups as u32,
    });
}

/// Sorts `keys` on the GPU; returns the device copies of the sorted keys
/// (element bits; `None` when `want_keys` is false and no pass makes them
/// anyway) and of the values, if any. 32-bit keys take the four radix
/// passes of [`sort_words`]; f64 keys take [`gpu_sort_f64`].
fn gpu_sort<T: Element>(
    gpu: &Gpu,
    kernel: &'static str,
    keys: &Buffer<T>,
    values: GpuValues<'_>,
    want_keys: bool,
) -> Result<(Option<DeviceCopy>, Option<DeviceCopy>)> {
    gpu.check_element(kernel, T::TYPE)?;
    let n = keys.len();
    // Refuse before uploading anything.
    word_chunks(gpu, kernel, n)?;
    if T::TYPE == ElementType::F64 {
        f64_chunks(gpu, kernel, n)?;
    }
    let (keys_in, vals_in) = gpu.scoped(kernel, || {
        let vals = match values {
            GpuValues::Buffer(v) => Some(gpu.resident(kernel, v)?),
            _ => None,
        };
        Ok((gpu.resident(kernel, keys)?, vals))
    })?;
    let words = match (values, &vals_in) {
        (GpuValues::None, _) => Words::None,
        (GpuValues::Indices, _) => Words::Indices,
        (GpuValues::Buffer(_), v) => Words::Copy(v.as_deref().expect("made above")),
    };
    if T::TYPE == ElementType::F64 {
        return gpu_sort_f64(gpu, kernel, &keys_in, n, words, want_keys);
    }
    let (k, v) = sort_words(gpu, kernel, T::TYPE, &keys_in, n, words)?;
    Ok((Some(k), v))
}

/// The input chunks (and output windows) of a sort of `n` 32-bit words:
/// whole tiles, each within one storage binding (whole tiles are 4 KiB, so
/// their offsets are aligned). [`Error::TooLarge`] when the words need u32
/// slot indices past `u32::MAX / 2`. A chunk's part of the digit table
/// (256 counts per tile: a quarter of its bytes) fits one binding with it.
fn word_chunks(gpu: &Gpu, kernel: &'static str, n: usize) -> Result<Vec<Range<usize>>> {
    let limit = gpu.info().chunk_bytes;
    let too_large = |what| Error::TooLarge {
        kernel,
        bytes: n as u64 * 4,
        limit,
        what,
    };
    if n > u32::MAX as usize / 2 {
        return Err(too_large("u32 slot indices"));
    }
    let per_binding = usize::try_from(limit / 4).unwrap_or(usize::MAX);
    let chunk = (per_binding / TILE * TILE).max(TILE);
    if chunk > per_binding {
        return Err(too_large("one storage binding (one tile of keys)"));
    }
    Ok((0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect())
}

/// What travels with a sort's words: nothing, a resident `u32` array, or
/// the input indices (made by the first pass).
#[derive(Clone, Copy)]
enum Words<'a> {
    None,
    Copy(&'a DeviceCopy),
    Indices,
}

/// f64 keys as two 32-bit sorts (`shaders/sort64.wgsl`): `split` writes
/// each key's order-preserving 64-bit image as a low and a high word; the
/// low words sort stably carrying the indices, the high words are gathered
/// through that permutation and sort stably carrying it, and the keys (and
/// values) are gathered through the result. Both sorts are stable, so this
/// is the LSD order of the 64-bit key: the CPU's order, bit for bit.
///
/// Past one storage binding every kernel runs per output chunk
/// ([`f64_chunks`]), and a gather, which reads its source at random, once
/// per chunk and source window, each dispatch writing the elements whose
/// source is in its window.
fn gpu_sort_f64(
    gpu: &Gpu,
    kernel: &'static str,
    keys_in: &DeviceCopy,
    n: usize,
    values: Words<'_>,
    want_keys: bool,
) -> Result<(Option<DeviceCopy>, Option<DeviceCopy>)> {
    let chunks = f64_chunks(gpu, kernel, n)?;
    let (bytes, words) = (n as u64 * 8, n as u64 * 4);
    // Runs `entry` once per output chunk, and per source window too when
    // `windows` (a gather): `src` (slot 1, elements of the given bytes) is
    // bound over the chunk or the window, each `(slot, copy, element
    // bytes)` of `per_chunk` over the chunk.
    let run = |entry,
               src: (&DeviceCopy, u64),
               windows: bool,
               per_chunk: &[(u32, &DeviceCopy, u64)]|
     -> Result<()> {
        gpu.scoped(kernel, || {
            let pipeline = gpu.pipeline(&ShaderSpec {
                label: "sort64",
                source: wide::SHADER,
                entry,
                element: None,
                constants: &[],
            })?;
            let range = |r: &Range<usize>, size: u64| r.start as u64 * size..r.end as u64 * size;
            let mut steps = Vec::new();
            for c in &chunks {
                let sources = if windows {
                    &chunks[..]
                } else {
                    std::slice::from_ref(c)
                };
                for w in sources {
                    let params = wide::Params {
                        n: c.len() as u32,
                        src_lo: w.start as u32,
                        src_hi: w.end as u32,
                        words: (src.1 / 4) as u32,
                    };
                    steps.push((params, c, w));
                }
            }
            let bindings: Vec<Vec<(u32, Bind<'_>)>> =
                steps
                    .iter()
                    .map(|(params, c, w)| {
                        let mut b = vec![
                            (0, Bind::Uniform(params.bytes())),
                            (1, Bind::storage(src.0, range(w, src.1))),
                        ];
                        b.extend(per_chunk.iter().map(|&(slot, copy, size)| {
                            (slot, Bind::storage(copy, range(c, size)))
                        }));
                        b
                    })
                    .collect();
            let groups = steps
                .iter()
                .map(|(_, c, _)| (c.len() as u32).div_ceil(crate::gpu::WORKGROUP_SIZE));
            gpu.submit(kernel, &Dispatch::each(&pipeline, &bindings, groups))
        })
    };
    let lo = gpu.alloc_bytes(kernel, words)?;
    let hi = gpu.alloc_bytes(kernel, words)?;
    run("split", (keys_in, 8), false, &[(3, &lo, 4), (4, &hi, 4)])?;
    let (_, by_lo) = sort_words(gpu, kernel, ElementType::U32, &lo, n, Words::Indices)?;
    let by_lo = by_lo.expect("indices were asked for");
    let hi_by_lo = lo; // the low words are no longer needed
    run(
        "gather",
        (&hi, 4),
        true,
        &[(2, &by_lo, 4), (3, &hi_by_lo, 4)],
    )?;
    let (_, order) = sort_words(
        gpu,
        kernel,
        ElementType::U32,
        &hi_by_lo,
        n,
        Words::Copy(&by_lo),
    )?;
    let order = order.expect("values were given");
    let keys = if want_keys {
        let out = gpu.alloc_bytes(kernel, bytes)?;
        run(
            "gather",
            (keys_in, 8),
            true,
            &[(2, &order, 4), (3, &out, 8)],
        )?;
        Some(out)
    } else {
        None
    };
    let values = match values {
        Words::None => None,
        Words::Indices => Some(order),
        Words::Copy(v) => {
            let out = gpu.alloc_bytes(kernel, words)?;
            run("gather", (v, 4), true, &[(2, &order, 4), (3, &out, 4)])?;
            Some(out)
        }
    };
    Ok((keys, values))
}

/// The output chunks (and gather source windows) of an f64 sort of `n`
/// keys: as many keys as one binding holds, in multiples of 64 (so the
/// windows of the 4- and 8-byte arrays start aligned). [`Error::TooLarge`]
/// when 64 keys do not fit one binding.
fn f64_chunks(gpu: &Gpu, kernel: &'static str, n: usize) -> Result<Vec<Range<usize>>> {
    let limit = gpu.info().chunk_bytes;
    let per = usize::try_from(limit / 8).unwrap_or(usize::MAX) / 64 * 64;
    if per == 0 {
        return Err(Error::TooLarge {
            kernel,
            bytes: n as u64 * 8,
            limit,
            what: "one storage binding (64 f64 keys)",
        });
    }
    Ok((0..n).step_by(per).map(|s| s..(s + per).min(n)).collect())
}

/// Runs the four radix passes on `n` resident 32-bit keys of element type
/// `kind` (its bits transformed to keys on the first pass and back on the
/// last); returns the device copies of the sorted keys (element bits) and
/// of the values, if any.
fn sort_words(
    gpu: &Gpu,
    kernel: &'static str,
    kind: ElementType,
    keys_in: &DeviceCopy,
    n: usize,
    values: Words<'_>,
) -> Result<(DeviceCopy, Option<DeviceCopy>)> {
    let bytes = n as u64 * 4;
    let groups = n.div_ceil(TILE);
    let table_len = groups * BUCKETS;
    let chunks = word_chunks(gpu, kernel, n)?;
    gpu.scoped(kernel, || {
        // The scatters' subgroup variants where the device has SUBGROUP
        // with subgroups of 8 or more (the shader's `subgroups` section).
        let sg = sort_subgroups(gpu.info());
        let onesweep = onesweep_spin(gpu.info(), n, chunks.len());
        // A table larger than one binding goes in parts, one per chunk.
        let local = table_len as u64 * 4 > gpu.info().chunk_bytes;
        let keys_b = gpu.alloc_bytes(kernel, bytes)?;
        let keys_c = gpu.alloc_bytes(kernel, bytes)?;
        let (vals_in, vals_b, vals_c) = match values {
            Words::None => (None, None, None),
            Words::Copy(v) => (
                Some(v),
                Some(gpu.alloc_bytes(kernel, bytes)?),
                Some(gpu.alloc_bytes(kernel, bytes)?),
            ),
            Words::Indices => (
                None,
                Some(gpu.alloc_bytes(kernel, bytes)?),
                Some(gpu.alloc_bytes(kernel, bytes)?),
            ),
        };
        let pairs = vals_b.is_some();
        let dummy = gpu.alloc_bytes(kernel, 16)?;
        let row_bytes = BUCKETS as u64 * 4;
        // Onesweep: a look-back word per digit, tile and pass, and the four
        // passes' global digit counts, zeroed before the submission.
        let status_pass = groups as u64 * row_bytes;
        let (status, ghist) = if onesweep.is_some() {
            let ghist = gpu.alloc_bytes(kernel, GHIST_WORDS as u64 * 4)?;
            // A queue write, not `Gpu::upload`: zeroing scratch space moves
            // none of the caller's data, and the engine's `uploads` count
            // only that (a chain of resident sorts makes none).
            gpu.queue()
                .write_buffer(ghist.buffer(), 0, &[0; GHIST_WORDS * 4]);
            let status = gpu.alloc_bytes(kernel, PASSES as u64 * status_pass)?;
            (Some(status), Some(ghist))
        } else {
            (None, None)
        };
        // Otherwise the digit table, scanned between passes.
        let table = if onesweep.is_none() {
            Some(gpu.alloc_bytes(kernel, table_len as u64 * 4)?)
        } else {
            None
        };
        // Two rows of BUCKETS words per chunk (`chunk_heads`), for a table
        // in parts only.
        let heads = if local && onesweep.is_none() {
            Some(gpu.alloc_bytes(kernel, chunks.len() as u64 * 2 * row_bytes)?)
        } else {
            None
        };
        let mut sums = Vec::new();
        let mut len = table_len;
        while len > TILE && onesweep.is_none() {
            len = len.div_ceil(TILE);
            sums.push(gpu.alloc_bytes(kernel, len as u64 * 4)?);
        }

        // Buffer list in the order of the ids above; absent values stand in
        // with buffers that exist (unused by `scatter_keys`).
        let mut list: Vec<&DeviceCopy> = vec![
            keys_in,
            &keys_b,
            &keys_c,
            vals_in.unwrap_or(keys_in),
            vals_b.as_ref().unwrap_or(&keys_b),
            vals_c.as_ref().unwrap_or(&keys_c),
            table.as_ref().unwrap_or(&dummy),
            &dummy,
            heads.as_ref().unwrap_or(&dummy),
            status.as_ref().unwrap_or(&dummy),
            ghist.as_ref().unwrap_or(&dummy),
        ];
        list.extend(sums.iter());

        let mut steps = Vec::new();
        let key_src = [KEYS_IN, KEYS_B, KEYS_C, KEYS_B];
        let key_dst = [KEYS_B, KEYS_C, KEYS_B, KEYS_C];
        let val_src = [VALS_IN, VALS_B, VALS_C, VALS_B];
        let val_dst = [VALS_B, VALS_C, VALS_B, VALS_C];
        let table_bytes = table_len as u64 * 4;
        let pass_flags = |pass: usize| {
            let mut flags = 0;
            if pass == 0 {
                flags |= FLAG_FIRST;
                if matches!(values, Words::Indices) {
                    flags |= FLAG_GEN_INDEX;
                }
            }
            if pass == PASSES - 1 {
                flags |= FLAG_LAST;
            }
            if local {
                flags |= FLAG_LOCAL;
            }
            flags
        };
        // Onesweep: every key's four digits counted once, then one scatter
        // per pass.
        let all = 0..bytes;
        let onesweep_passes = if onesweep.is_some() { PASSES } else { 0 };
        if onesweep.is_some() {
            steps.push(Step {
                entry: E_OS_HIST,
                params: Params {
                    n: n as u32,
                    groups: groups as u32,
                    flags: FLAG_FIRST,
                    g_end: groups as u32,
                    out_hi: n as u32,
                    ..Params::default()
                },
                binds: vec![
                    (1, KEYS_IN, all.clone()),
                    (7, STATUS, 0..PASSES as u64 * status_pass),
                    (8, GHIST, 0..GHIST_WORDS as u64 * 4),
                ],
                groups: groups as u32,
            });
        }
        for pass in 0..onesweep_passes {
            let flags = pass_flags(pass);
            let at = pass as u64 * status_pass;
            let mut binds = vec![
                (1, key_src[pass], all.clone()),
                (3, key_dst[pass], all.clone()),
                (7, STATUS, at..at + status_pass),
                (8, GHIST, 0..GHIST_WORDS as u64 * 4),
            ];
            if pairs {
                // Argsort's first pass reads no values; bind the keys there.
                let vsrc = if flags & FLAG_GEN_INDEX != 0 {
                    KEYS_IN
                } else {
                    val_src[pass]
                };
                binds.push((2, vsrc, all.clone()));
                binds.push((4, val_dst[pass], all.clone()));
            }
            steps.push(Step {
                entry: if pairs { E_OS_PAIRS } else { E_OS_KEYS },
                params: Params {
                    n: n as u32,
                    groups: groups as u32,
                    shift: pass as u32 * RADIX_BITS,
                    flags,
                    g_end: groups as u32,
                    out_hi: n as u32,
                    ..Params::default()
                },
                binds,
                groups: groups as u32,
            });
        }
        let split_passes = if onesweep.is_some() { 0 } else { PASSES };
        for pass in 0..split_passes {
            let shift = pass as u32 * RADIX_BITS;
            let flags = pass_flags(pass);
            let params = Params {
                n: n as u32,
                groups: groups as u32,
                shift,
                flags,
                ..Params::default()
            };
            let window = |r: &Range<usize>| r.start as u64 * 4..r.end as u64 * 4;
            // The chunk's tiles, its params for the whole output, and its
            // part of the table (all of it unless `local`).
            let of_chunk = |c: &Range<usize>| {
                let tiles = (c.start / TILE, c.end.div_ceil(TILE));
                let p = Params {
                    g0: tiles.0 as u32,
                    g_end: tiles.1 as u32,
                    out_hi: n as u32,
                    ..params
                };
                let part = if local {
                    tiles.0 as u64 * row_bytes..tiles.1 as u64 * row_bytes
                } else {
                    0..table_bytes
                };
                (p, (tiles.1 - tiles.0) as u32, part)
            };
            for c in &chunks {
                let (params, tiles, part) = of_chunk(c);
                steps.push(Step {
                    entry: E_HIST,
                    params,
                    binds: vec![(1, key_src[pass], window(c)), (5, TABLE, part)],
                    groups: tiles,
                });
            }
            if local {
                // Each chunk's part scanned on its own, then every chunk's
                // digit bases across chunks (the shader's `chunk_bases`).
                for c in &chunks {
                    let (_, tiles, part) = of_chunk(c);
                    scan_steps(&mut steps, TABLE, part.start, tiles as usize * BUCKETS, 0);
                }
                for (i, c) in chunks.iter().enumerate() {
                    let (params, _, part) = of_chunk(c);
                    let row = i as u64 * 2 * row_bytes;
                    steps.push(Step {
                        entry: E_HEADS,
                        params: Params {
                            n: c.len() as u32,
                            ..params
                        },
                        binds: vec![(5, TABLE, part), (6, HEADS, row..row + 2 * row_bytes)],
                        groups: 1,
                    });
                }
                steps.push(Step {
                    entry: E_BASES,
                    params: Params {
                        groups: chunks.len() as u32,
                        ..params
                    },
                    binds: vec![(6, HEADS, 0..chunks.len() as u64 * 2 * row_bytes)],
                    groups: 1,
                });
            } else {
                scan_steps(&mut steps, TABLE, 0, table_len, 0);
            }
            for (i, c) in chunks.iter().enumerate() {
                let (params, tiles, part) = of_chunk(c);
                // The chunk's digit bases (read only with FLAG_LOCAL).
                let bases = if local {
                    let row = i as u64 * 2 * row_bytes;
                    (6, HEADS, row..row + row_bytes)
                } else {
                    (6, DUMMY, 0..16)
                };
                for w in &chunks {
                    let params = Params {
                        out_lo: w.start as u32,
                        out_hi: w.end as u32,
                        ..params
                    };
                    let mut binds = vec![
                        (1, key_src[pass], window(c)),
                        (3, key_dst[pass], window(w)),
                        (5, TABLE, part.clone()),
                        bases.clone(),
                    ];
                    if pairs {
                        // Argsort's first pass reads no values; bind the keys there.
                        let vsrc = if flags & FLAG_GEN_INDEX != 0 {
                            KEYS_IN
                        } else {
                            val_src[pass]
                        };
                        binds.push((2, vsrc, window(c)));
                        binds.push((4, val_dst[pass], window(w)));
                    }
                    steps.push(Step {
                        entry: if pairs { E_PAIRS } else { E_KEYS },
                        params,
                        binds,
                        groups: tiles,
                    });
                }
            }
        }
        // The pipelines of the entries the steps use.
        let mut pipelines: Vec<Option<wgpu::ComputePipeline>> = vec![None; ENTRIES.len()];
        for s in &steps {
            if pipelines[s.entry].is_some() {
                continue;
            }
            let entry = if sg {
                ENTRIES_SG[s.entry]
            } else {
                ENTRIES[s.entry]
            };
            let kind_code = ("KIND", f64::from(kind.kind_code()));
            let spin = ("SPIN", f64::from(onesweep.unwrap_or(0)));
            let with_spin = [kind_code, spin];
            pipelines[s.entry] = Some(gpu.pipeline(&ShaderSpec {
                label: "sort",
                source: SHADER,
                entry,
                element: Some(kind),
                constants: if s.entry >= E_OS_KEYS {
                    &with_spin
                } else {
                    &with_spin[..1]
                },
            })?);
        }
        let bindings: Vec<Vec<(u32, Bind<'_>)>> = steps
            .iter()
            .map(|s| {
                let mut v = vec![(0, Bind::Uniform(s.params.bytes()))];
                for (slot, id, range) in &s.binds {
                    v.push((*slot, Bind::storage(list[*id], range.clone())));
                }
                v
            })
            .collect();
        let dispatches: Vec<Dispatch<'_>> = steps
            .iter()
            .zip(&bindings)
            .map(|(s, b)| {
                let p = pipelines[s.entry].as_ref();
                Dispatch::new(p.expect("compiled above"), b, s.groups)
            })
            .collect();
        gpu.submit(kernel, &dispatches)?;
        drop(dispatches);
        drop(bindings);
        drop(list);
        Ok((keys_c, vals_c))
    })
}
