//! The lane layer: one SIMD vector type per element type, at the width the
//! build's target features allow, and the building blocks (with scalar
//! tails) that the CPU side of every kernel is written against.
//!
//! | compiled for        | f32/i32/u32 lanes | vector registers |
//! |---------------------|-------------------|------------------|
//! | x86-64 `avx512f`    | 16 (`f32x16`)     | 32               |
//! | x86-64 `avx2`       | 8 (`f32x8`)       | 16               |
//! | anything else       | 4 (`f32x4`: SSE2, NEON, wasm simd128, scalar) | 16 (32 on aarch64) |
//!
//! f64 vectors ([`F64`]) are the same registers at half the lanes
//! ([`F64_LANES`]: 8, 4 or 2).
//!
//! No kernel names a width: they use [`F32`], [`I32`], [`U32`] and
//! [`LANES`], and size register tiles from [`VECTOR_REGISTERS`]. `wide`
//! picks its instructions at compile time, so the width is that of the
//! build: `-C target-cpu=native` (the repo's `.cargo/config.toml`) gets the
//! machine's widest. [`compiled_level`] and [`detected_level`] say what was
//! compiled and what the running CPU has.
//!
//! Min/max-style reductions work on an order-preserving `u32` *key* of each
//! element (see [`Lanes::key`]): integer order of keys equals the numeric
//! order of values, with `-0.0 < +0.0`. The WGSL shaders use the same key, so
//! both backends agree to the bit.

use std::fmt;

use crate::buffer::Element;

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod width {
    pub(super) use wide::{f32x16 as F32, i32x16 as I32, u32x16 as U32};
    pub(super) use wide::{f64x8 as F64, i64x8 as I64, u64x8 as U64};
    pub(super) const REGISTERS: usize = 32;
    pub(super) const LEVEL: super::SimdLevel = super::SimdLevel::Avx512;
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    not(target_feature = "avx512f")
))]
mod width {
    pub(super) use wide::{f32x8 as F32, i32x8 as I32, u32x8 as U32};
    pub(super) use wide::{f64x4 as F64, i64x4 as I64, u64x4 as U64};
    pub(super) const REGISTERS: usize = 16;
    pub(super) const LEVEL: super::SimdLevel = if cfg!(target_feature = "fma") {
        super::SimdLevel::Avx2Fma
    } else {
        super::SimdLevel::Avx2
    };
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
mod width {
    pub(super) use wide::{f32x4 as F32, i32x4 as I32, u32x4 as U32};
    pub(super) use wide::{f64x2 as F64, i64x2 as I64, u64x2 as U64};
    pub(super) const REGISTERS: usize = if cfg!(target_arch = "aarch64") {
        32
    } else {
        16
    };
    pub(super) const LEVEL: super::SimdLevel = if cfg!(target_arch = "x86_64") {
        if cfg!(target_feature = "sse4.1") {
            super::SimdLevel::Sse41
        } else {
            super::SimdLevel::Sse2
        }
    } else if cfg!(all(target_arch = "aarch64", target_feature = "neon")) {
        super::SimdLevel::Neon
    } else {
        super::SimdLevel::Portable
    };
}

/// The f32 vector of this build ([`LANES`] lanes).
pub type F32 = width::F32;
/// The i32 vector of this build ([`LANES`] lanes).
pub type I32 = width::I32;
/// The u32 vector of this build ([`LANES`] lanes).
pub type U32 = width::U32;

/// Lanes in [`F32`], [`I32`] and [`U32`]: 16, 8 or 4 (see the module docs).
pub const LANES: usize = size_of::<F32>() / size_of::<f32>();

/// The f64 vector of this build ([`F64_LANES`] lanes: the same register
/// width as [`F32`]).
pub type F64 = width::F64;
/// The i64 vector of this build ([`F64_LANES`] lanes).
pub type I64 = width::I64;
/// The u64 vector of this build ([`F64_LANES`] lanes): f64 keys.
pub type U64 = width::U64;

/// Lanes in [`F64`]: half of [`LANES`] (8 with AVX-512, 4 with AVX2, 2 otherwise).
pub const F64_LANES: usize = LANES / 2;

/// Architectural vector registers at this build's width (32 with AVX-512 or
/// NEON, 16 otherwise): register tiles (the gemm micro-kernel) are sized
/// from it.
pub const VECTOR_REGISTERS: usize = width::REGISTERS;

/// A SIMD instruction-set level, as compiled into this build or as found on
/// the running CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SimdLevel {
    /// No SIMD `wide` knows of: 4-lane vectors emulated with scalars.
    Portable,
    /// x86-64 baseline.
    Sse2,
    /// SSE4.1.
    Sse41,
    /// AVX2 without FMA.
    Avx2,
    /// AVX2 with FMA.
    Avx2Fma,
    /// AVX-512F (with FMA).
    Avx512,
    /// aarch64 NEON.
    Neon,
}

impl SimdLevel {
    /// f32 lanes of one vector at this level.
    pub fn f32_lanes(self) -> usize {
        match self {
            SimdLevel::Avx512 => 16,
            SimdLevel::Avx2 | SimdLevel::Avx2Fma => 8,
            _ => 4,
        }
    }

    /// Whether this level has fused multiply-add.
    pub fn has_fma(self) -> bool {
        matches!(
            self,
            SimdLevel::Avx2Fma | SimdLevel::Avx512 | SimdLevel::Neon
        )
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimdLevel::Portable => "portable (no SIMD)",
            SimdLevel::Sse2 => "SSE2",
            SimdLevel::Sse41 => "SSE4.1",
            SimdLevel::Avx2 => "AVX2",
            SimdLevel::Avx2Fma => "AVX2+FMA",
            SimdLevel::Avx512 => "AVX-512F",
            SimdLevel::Neon => "NEON",
        })?;
        write!(f, ", {} f32 lanes", self.f32_lanes())
    }
}

/// The level this build was compiled for: what every CPU kernel runs at.
pub const fn compiled_level() -> SimdLevel {
    width::LEVEL
}

/// The widest level the running CPU supports (runtime detection).
pub fn detected_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            SimdLevel::Avx512
        } else if std::arch::is_x86_feature_detected!("avx2") {
            if std::arch::is_x86_feature_detected!("fma") {
                SimdLevel::Avx2Fma
            } else {
                SimdLevel::Avx2
            }
        } else if std::arch::is_x86_feature_detected!("sse4.1") {
            SimdLevel::Sse41
        } else {
            SimdLevel::Sse2
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        compiled_level()
    }
}

/// One notice when the CPU has wider vectors than this build uses, with the
/// `rustflags` line that fixes it; `None` when the build is at the CPU's
/// width.
pub fn width_notice() -> Option<String> {
    let (built, cpu) = (compiled_level(), detected_level());
    (cpu.f32_lanes() > built.f32_lanes()).then(|| {
        format!(
            "this CPU has {cpu} but tandem was compiled for {built}: CPU kernels run at \
             {}/{} of the width. Build with `-C target-cpu=native`, e.g. in \
             .cargo/config.toml: [build] rustflags = [\"-C\", \"target-cpu=native\"]",
            built.f32_lanes(),
            cpu.f32_lanes()
        )
    })
}

/// A load and a store per element type: `$load(s)` reads one vector from the
/// front of `s`, `$store(v, d)` writes `v` to the front of `d`; both panic on
/// a slice shorter than the vector.
macro_rules! vector_io {
    ($($load:ident, $store:ident: $t:ty => $v:ty, $n:ident;)*) => {$(
        #[doc = concat!("Loads [`", stringify!($n), "`] ", stringify!($t), " from the front of `s`.")]
        #[inline(always)]
        pub fn $load(s: &[$t]) -> $v {
            <$v>::new(s[..$n].try_into().expect("a full vector of elements"))
        }

        /// Stores `v` to the front of `d`.
        #[inline(always)]
        pub fn $store(v: $v, d: &mut [$t]) {
            d[..$n].copy_from_slice(v.as_array());
        }
    )*};
}

vector_io! {
    load_f32, store_f32: f32 => F32, LANES;
    load_f64, store_f64: f64 => F64, F64_LANES;
    load_i32, store_i32: i32 => I32, LANES;
    load_u32, store_u32: u32 => U32, LANES;
}

/// Converts each i32 lane to f32 (rounding to nearest).
#[inline(always)]
pub fn i32_to_f32(v: I32) -> F32 {
    v.round_float()
}

/// Elements summed by one f32 leaf of [`pairwise_sum`]: 16 sequential adds
/// into each lane of four accumulators before the tree takes over (1,024
/// elements at 16 lanes, 512 at 8, 256 at 4).
pub const PAIRWISE_LEAF: usize = 64 * LANES;

/// An element type with a vector type of this build's register width:
/// [`LANES`] lanes for the 32-bit types, [`F64_LANES`] for f64. The
/// elementwise building blocks ([`map`], [`zip`]) take any of them.
pub trait Simd: Element {
    /// The vector type.
    type V: Copy + Send + Sync;
    /// Lanes in [`Simd::V`].
    const N: usize;
    /// Loads [`Simd::N`] elements.
    fn load(s: &[Self]) -> Self::V;
    /// Stores [`Simd::N`] elements.
    fn store(v: Self::V, d: &mut [Self]);
    /// Broadcasts one value.
    fn splat(x: Self) -> Self::V;
}

/// A 32-bit element type ([`LANES`] lanes) with an order-preserving `u32`
/// key: what the min/max-style reductions work on.
pub trait Lanes: Simd {
    /// Order-preserving key of one element (floats: NaN maps to any key
    /// outside the finite range; callers filter NaN with [`Lanes::is_nan`]).
    fn key(x: Self) -> u32;
    /// Inverse of [`Lanes::key`].
    fn from_key(k: u32) -> Self;
    /// Keys of [`LANES`] elements, NaN lanes replaced by `nan_key`.
    fn keys(v: Self::V, nan_key: u32) -> U32;
    /// Whether a value is a NaN (always false for integers).
    fn is_nan(x: Self) -> bool;
}

fn f32_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

impl Lanes for f32 {
    #[inline(always)]
    fn key(x: f32) -> u32 {
        f32_key(x)
    }
    #[inline(always)]
    fn from_key(k: u32) -> f32 {
        f32::from_bits(if k & 0x8000_0000 != 0 {
            k & 0x7fff_ffff
        } else {
            !k
        })
    }
    #[inline(always)]
    fn keys(v: F32, nan_key: u32) -> U32 {
        let bits: U32 = bytemuck::cast(v);
        let signed: I32 = bytemuck::cast(v);
        // All ones where the sign bit is set, else zero.
        let neg: U32 = bytemuck::cast(signed >> 31);
        let key = bits ^ (neg | U32::splat(0x8000_0000));
        let nan: U32 = bytemuck::cast(v.is_nan());
        nan.select(U32::splat(nan_key), key)
    }
    #[inline(always)]
    fn is_nan(x: f32) -> bool {
        x.is_nan()
    }
}

/// `Lanes` for an integer type: keys are its bits with the flip xored in, so
/// unsigned order on keys is the type's order.
macro_rules! int_lanes {
    ($($t:ty => $v:ty, $flip:expr;)*) => {$(
        impl Lanes for $t {
            #[inline(always)]
            fn key(x: $t) -> u32 {
                (x as u32) ^ $flip
            }
            #[inline(always)]
            fn from_key(k: u32) -> $t {
                (k ^ $flip) as $t
            }
            #[inline(always)]
            fn keys(v: $v, _nan_key: u32) -> U32 {
                bytemuck::cast::<$v, U32>(v) ^ U32::splat($flip)
            }
            #[inline(always)]
            fn is_nan(_: $t) -> bool {
                false
            }
        }
    )*};
}

int_lanes! {
    i32 => I32, 0x8000_0000;
    u32 => U32, 0;
}

/// `Simd` for an element type: its vector type, lane count, load and store.
macro_rules! simd {
    ($($t:ty => $v:ty, $n:expr, $load:ident, $store:ident;)*) => {$(
        impl Simd for $t {
            type V = $v;
            const N: usize = $n;
            #[inline(always)]
            fn load(s: &[$t]) -> $v {
                $load(s)
            }
            #[inline(always)]
            fn store(v: $v, d: &mut [$t]) {
                $store(v, d)
            }
            #[inline(always)]
            fn splat(x: $t) -> $v {
                <$v>::splat(x)
            }
        }
    )*};
}

simd! {
    f32 => F32, LANES, load_f32, store_f32;
    f64 => F64, F64_LANES, load_f64, store_f64;
    i32 => I32, LANES, load_i32, store_i32;
    u32 => U32, LANES, load_u32, store_u32;
}

/// Order-preserving `u64` key of an f64 (the f32 rule at 64 bits): integer
/// order of keys is numeric order, with `-0.0 < +0.0`. The sort and the
/// min/max reductions on f64 work on it.
#[inline(always)]
pub fn f64_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 != 0 { !b } else { b | 1 << 63 }
}

/// Inverse of [`f64_key`].
#[inline(always)]
pub fn f64_from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 != 0 { k & !(1 << 63) } else { !k })
}

/// Keys of [`F64_LANES`] f64, NaN lanes replaced by `nan_key`.
#[inline(always)]
pub fn f64_keys(v: F64, nan_key: u64) -> U64 {
    let bits: U64 = bytemuck::cast(v);
    let signed: I64 = bytemuck::cast(v);
    let neg: U64 = bytemuck::cast(signed >> 63);
    let key = bits ^ (neg | U64::splat(1 << 63));
    let nan: U64 = bytemuck::cast(v.is_nan());
    nan.select(U64::splat(nan_key), key)
}

/// Smallest (or, with `max`, largest) [`f64_key`] in `x`, NaNs ignored; the
/// identity (`u64::MAX` for min, 0 for max) when all are NaN or `x` is empty.
pub fn extreme_key_f64(x: &[f64], max: bool) -> u64 {
    let ident = if max { 0 } else { u64::MAX };
    let pick = |a: U64, b: U64| if max { a.max(b) } else { a.min(b) };
    let mut acc = [U64::splat(ident); 4];
    let body = x.len() - x.len() % (4 * F64_LANES);
    for c in x[..body].chunks_exact(4 * F64_LANES) {
        for (k, acc) in acc.iter_mut().enumerate() {
            let keys = f64_keys(load_f64(&c[k * F64_LANES..]), ident);
            *acc = pick(*acc, keys);
        }
    }
    let v = pick(pick(acc[0], acc[1]), pick(acc[2], acc[3]));
    let mut best = if max { v.reduce_max() } else { v.reduce_min() };
    for &e in &x[body..] {
        if e.is_nan() {
            continue;
        }
        let k = f64_key(e);
        best = if max { best.max(k) } else { best.min(k) };
    }
    best
}

/// The first lane of a comparison mask that is set.
fn first_set<M: Copy + Default + PartialEq>(lanes: &[M]) -> usize {
    lanes.iter().position(|&m| m != M::default()).unwrap_or(0)
}

/// First index in `x` whose [`f64_key`] is `key` (NaNs never match).
pub fn find_key_f64(x: &[f64], key: u64) -> Option<usize> {
    let ident = if key == u64::MAX { 0 } else { u64::MAX };
    let target = U64::splat(key);
    let body = x.len() - x.len() % F64_LANES;
    for (i, c) in x[..body].chunks_exact(F64_LANES).enumerate() {
        let hit = f64_keys(load_f64(c), ident).simd_eq(target);
        if hit.any() {
            return Some(i * F64_LANES + first_set(&hit.to_array()));
        }
    }
    x[body..]
        .iter()
        .position(|&e| !e.is_nan() && f64_key(e) == key)
        .map(|p| body + p)
}

/// A float element type with vector arithmetic (f32 and f64): what the
/// dense kernels (gemm, conv2d) are written against.
pub trait Real:
    Simd + Default + std::ops::Mul<Output = Self> + std::ops::Add<Output = Self>
{
    /// A zero vector.
    fn vzero() -> Self::V;
    /// `a + b` on vectors.
    fn vadd(a: Self::V, b: Self::V) -> Self::V;
    /// `a·b + c` on vectors, fused where the build has FMA.
    fn vmul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a·b + c`, fused (one rounding).
    fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// `x` converted (exactly, for f64).
    fn from_f32(x: f32) -> Self;
    /// `x` converted (rounded to nearest, for f32).
    fn from_f64(x: f64) -> Self;
}

macro_rules! real {
    ($($t:ty: $v:ty),*) => {$(
        impl Real for $t {
            #[inline(always)]
            fn vzero() -> $v {
                <$v>::ZERO
            }
            #[inline(always)]
            fn vadd(a: $v, b: $v) -> $v {
                a + b
            }
            #[inline(always)]
            fn vmul_add(a: $v, b: $v, c: $v) -> $v {
                a.mul_add(b, c)
            }
            #[inline(always)]
            fn mul_add(a: $t, b: $t, c: $t) -> $t {
                a.mul_add(b, c)
            }
            #[inline(always)]
            fn from_f32(x: f32) -> $t {
                <$t>::from(x)
            }
            #[inline(always)]
            fn from_f64(x: f64) -> $t {
                x as $t
            }
        }
    )*};
}
real!(f32: F32, f64: F64);

/// `dst[i] = s(src[i])`, [`Simd::N`] lanes at a time with `v`, the tail with `s`.
#[inline(always)]
pub fn map<T: Simd>(src: &[T], dst: &mut [T], v: impl Fn(T::V) -> T::V, s: impl Fn(T) -> T) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    let body = n - n % T::N;
    for (a, d) in src[..body]
        .chunks_exact(T::N)
        .zip(dst[..body].chunks_exact_mut(T::N))
    {
        T::store(v(T::load(a)), d);
    }
    for (a, d) in src[body..].iter().zip(&mut dst[body..]) {
        *d = s(*a);
    }
}

/// `dst[i] = s(a[i], b[i])`, [`Simd::N`] lanes at a time with `v`, the tail with `s`.
#[inline(always)]
pub fn zip<T: Simd>(
    a: &[T],
    b: &[T],
    dst: &mut [T],
    v: impl Fn(T::V, T::V) -> T::V,
    s: impl Fn(T, T) -> T,
) {
    let n = a.len().min(b.len()).min(dst.len());
    let (a, b, dst) = (&a[..n], &b[..n], &mut dst[..n]);
    let body = n - n % T::N;
    for ((x, y), d) in a[..body]
        .chunks_exact(T::N)
        .zip(b[..body].chunks_exact(T::N))
        .zip(dst[..body].chunks_exact_mut(T::N))
    {
        T::store(v(T::load(x), T::load(y)), d);
    }
    for ((x, y), d) in a[body..].iter().zip(&b[body..]).zip(&mut dst[body..]) {
        *d = s(*x, *y);
    }
}

/// Pairwise sum of `f(a[i], b[i])` terms: leaves of `64 · R::N` elements
/// ([`PAIRWISE_LEAF`] for f32) are summed in four vector accumulators,
/// leaves are combined in a binary tree. Rounding error grows like log2(n).
pub fn pairwise_sum<R: Real>(
    a: &[R],
    b: &[R],
    v: &impl Fn(R::V, R::V, R::V) -> R::V,
    s: &impl Fn(R, R, R) -> R,
) -> R {
    let (n, lanes) = (a.len(), R::N);
    let leaf = 64 * lanes;
    if n <= leaf {
        let mut acc = [R::vzero(); 4];
        let body = n - n % (4 * lanes);
        for (x, y) in a[..body]
            .chunks_exact(4 * lanes)
            .zip(b[..body].chunks_exact(4 * lanes))
        {
            for (k, acc) in acc.iter_mut().enumerate() {
                let r = k * lanes..(k + 1) * lanes;
                *acc = v(R::load(&x[r.clone()]), R::load(&y[r]), *acc);
            }
        }
        let mut tail = R::default();
        for (x, y) in a[body..].iter().zip(&b[body..]) {
            tail = s(*x, *y, tail);
        }
        let v = R::vadd(R::vadd(acc[0], acc[1]), R::vadd(acc[2], acc[3]));
        // The lanes of one vector summed as a balanced tree.
        let mut l = [R::default(); LANES];
        R::store(v, &mut l);
        let mut w = lanes;
        while w > 1 {
            w /= 2;
            for i in 0..w {
                l[i] = l[i] + l[i + w];
            }
        }
        return l[0] + tail;
    }
    // Split on a multiple of the leaf so leaves stay full.
    let mid = (n / 2).div_ceil(leaf) * leaf;
    pairwise_sum(&a[..mid], &b[..mid], v, s) + pairwise_sum(&a[mid..], &b[mid..], v, s)
}

/// Wrapping sum of an integer slice.
pub fn wrapping_sum<T: Lanes>(
    x: &[T],
    add: impl Fn(T::V, T::V) -> T::V,
    add1: impl Fn(T, T) -> T,
) -> T {
    let mut acc = [T::splat(T::zeroed()); 4];
    let body = x.len() - x.len() % (4 * LANES);
    for c in x[..body].chunks_exact(4 * LANES) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = add(*acc, T::load(&c[k * LANES..]));
        }
    }
    let v = add(add(acc[0], acc[1]), add(acc[2], acc[3]));
    let mut lanes = [T::zeroed(); LANES];
    T::store(v, &mut lanes);
    let mut total = T::zeroed();
    for l in lanes.into_iter().chain(x[body..].iter().copied()) {
        total = add1(total, l);
    }
    total
}

/// Smallest (or, with `max`, largest) key in `x`, NaNs ignored. Returns the
/// identity (`u32::MAX` for min, 0 for max) when every element is NaN or `x`
/// is empty.
pub fn extreme_key<T: Lanes>(x: &[T], max: bool) -> u32 {
    let ident = if max { 0 } else { u32::MAX };
    let pick = |a: U32, b: U32| if max { a.max(b) } else { a.min(b) };
    let mut acc = [U32::splat(ident); 4];
    let body = x.len() - x.len() % (4 * LANES);
    for c in x[..body].chunks_exact(4 * LANES) {
        for (k, acc) in acc.iter_mut().enumerate() {
            let keys = T::keys(T::load(&c[k * LANES..]), ident);
            *acc = pick(*acc, keys);
        }
    }
    let v = pick(pick(acc[0], acc[1]), pick(acc[2], acc[3]));
    let mut best = if max { v.reduce_max() } else { v.reduce_min() };
    for &e in &x[body..] {
        if T::is_nan(e) {
            continue;
        }
        let k = T::key(e);
        best = if max { best.max(k) } else { best.min(k) };
    }
    best
}

/// First index in `x` whose key is `key` (NaNs never match).
pub fn find_key<T: Lanes>(x: &[T], key: u32) -> Option<usize> {
    let ident = if key == u32::MAX { 0 } else { u32::MAX };
    let target = U32::splat(key);
    let body = x.len() - x.len() % LANES;
    for (i, c) in x[..body].chunks_exact(LANES).enumerate() {
        let hit = T::keys(T::load(c), ident).simd_eq(target);
        if hit.any() {
            return Some(i * LANES + first_set(&hit.to_array()));
        }
    }
    x[body..]
        .iter()
        .position(|&e| !T::is_nan(e) && T::key(e) == key)
        .map(|p| body + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_keys_order_like_values() {
        let vals = [
            f32::NEG_INFINITY,
            -3.5,
            -f32::MIN_POSITIVE,
            -1e-45,
            -0.0,
            0.0,
            1e-45,
            1.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for w in vals.windows(2) {
            assert!(f32::key(w[0]) < f32::key(w[1]), "{} !< {}", w[0], w[1]);
        }
        for v in vals {
            assert_eq!(f32::from_key(f32::key(v)).to_bits(), v.to_bits());
        }
        let vals = [-0.0, 0.0, 1.0, f32::NAN, -2.0, 3.0, -f32::NAN, 5.0];
        let lanes = f32::keys(load_f32(&vals.repeat(LANES.div_ceil(8))), 7);
        for (i, &k) in lanes.to_array().iter().enumerate() {
            let v: f32 = vals[i % 8];
            let want = if v.is_nan() { 7 } else { f32::key(v) };
            assert_eq!(k, want, "lane {i} ({v})");
        }
    }

    #[test]
    fn f64_keys_order_like_values() {
        let vals = [
            f64::NEG_INFINITY,
            -3.5,
            -f64::MIN_POSITIVE,
            -5e-324,
            -0.0,
            0.0,
            5e-324,
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        for w in vals.windows(2) {
            assert!(f64_key(w[0]) < f64_key(w[1]), "{} !< {}", w[0], w[1]);
        }
        for v in vals {
            assert_eq!(f64_from_key(f64_key(v)).to_bits(), v.to_bits());
        }
        let vals = [-0.0, 0.0, 1.0, f64::NAN, -2.0, 3.0, -f64::NAN, 5.0];
        let v: Vec<f64> = vals.iter().copied().cycle().take(F64_LANES).collect();
        for (i, &k) in f64_keys(load_f64(&v), 7).to_array().iter().enumerate() {
            let want = if v[i].is_nan() { 7 } else { f64_key(v[i]) };
            assert_eq!(k, want, "lane {i} ({})", v[i]);
        }
        let x: Vec<f64> = (0..37).map(|i| ((i * 7919) % 37) as f64 - 18.0).collect();
        let k = extreme_key_f64(&x, false);
        assert_eq!(f64_from_key(k), -18.0);
        assert_eq!(find_key_f64(&x, k), x.iter().position(|&v| v == -18.0));
        assert_eq!(f64_from_key(extreme_key_f64(&x, true)), 18.0);
    }

    #[test]
    fn int_keys_order_like_values() {
        for w in [i32::MIN, -1, 0, 1, i32::MAX].windows(2) {
            assert!(i32::key(w[0]) < i32::key(w[1]));
        }
        assert_eq!(i32::from_key(i32::key(-7)), -7);
    }
}
