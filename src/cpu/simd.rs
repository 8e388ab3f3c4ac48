//! SIMD building blocks over `wide`'s 8-lane vectors, each with a scalar
//! tail, shared by the CPU side of every kernel.
//!
//! Min/max-style reductions work on an order-preserving `u32` *key* of each
//! element (see [`Lanes::key`]): integer order of keys equals the numeric
//! order of values, with `-0.0 < +0.0`. The WGSL shaders use the same key, so
//! both backends agree to the bit.

use wide::{f32x8, i32x8, u32x8};

use crate::buffer::Element;

/// Lanes in the vectors used here.
pub const LANES: usize = 8;

/// Elements summed by one leaf of [`pairwise_sum_f32`]: 8 sequential adds per
/// lane before the tree takes over.
const PAIRWISE_LEAF: usize = 256;

/// An element type with an 8-lane `wide` vector.
pub trait Lanes: Element {
    /// The vector type.
    type V: Copy + Send + Sync;
    /// Loads 8 elements.
    fn load(s: &[Self]) -> Self::V;
    /// Stores 8 elements.
    fn store(v: Self::V, d: &mut [Self]);
    /// Broadcasts one value.
    fn splat(x: Self) -> Self::V;
    /// Order-preserving key of one element (floats: NaN maps to any key
    /// outside the finite range; callers filter NaN with [`Lanes::is_nan`]).
    fn key(x: Self) -> u32;
    /// Inverse of [`Lanes::key`].
    fn from_key(k: u32) -> Self;
    /// Keys of 8 elements, NaN lanes replaced by `nan_key`.
    fn keys(v: Self::V, nan_key: u32) -> u32x8;
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
    type V = f32x8;
    #[inline(always)]
    fn load(s: &[f32]) -> f32x8 {
        f32x8::from(&s[..LANES])
    }
    #[inline(always)]
    fn store(v: f32x8, d: &mut [f32]) {
        d[..LANES].copy_from_slice(v.as_array());
    }
    #[inline(always)]
    fn splat(x: f32) -> f32x8 {
        f32x8::splat(x)
    }
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
    fn keys(v: f32x8, nan_key: u32) -> u32x8 {
        let bits: u32x8 = bytemuck::cast(v);
        let signed: i32x8 = bytemuck::cast(v);
        // All ones where the sign bit is set, else zero.
        let neg: u32x8 = bytemuck::cast(signed >> 31);
        let key = bits ^ (neg | u32x8::splat(0x8000_0000));
        let nan: u32x8 = bytemuck::cast(v.is_nan());
        nan.select(u32x8::splat(nan_key), key)
    }
    #[inline(always)]
    fn is_nan(x: f32) -> bool {
        x.is_nan()
    }
}

impl Lanes for i32 {
    type V = i32x8;
    #[inline(always)]
    fn load(s: &[i32]) -> i32x8 {
        i32x8::from(&s[..LANES])
    }
    #[inline(always)]
    fn store(v: i32x8, d: &mut [i32]) {
        d[..LANES].copy_from_slice(v.as_array());
    }
    #[inline(always)]
    fn splat(x: i32) -> i32x8 {
        i32x8::splat(x)
    }
    #[inline(always)]
    fn key(x: i32) -> u32 {
        (x as u32) ^ 0x8000_0000
    }
    #[inline(always)]
    fn from_key(k: u32) -> i32 {
        (k ^ 0x8000_0000) as i32
    }
    #[inline(always)]
    fn keys(v: i32x8, _nan_key: u32) -> u32x8 {
        bytemuck::cast::<i32x8, u32x8>(v) ^ u32x8::splat(0x8000_0000)
    }
    #[inline(always)]
    fn is_nan(_: i32) -> bool {
        false
    }
}

impl Lanes for u32 {
    type V = u32x8;
    #[inline(always)]
    fn load(s: &[u32]) -> u32x8 {
        u32x8::from(&s[..LANES])
    }
    #[inline(always)]
    fn store(v: u32x8, d: &mut [u32]) {
        d[..LANES].copy_from_slice(v.as_array());
    }
    #[inline(always)]
    fn splat(x: u32) -> u32x8 {
        u32x8::splat(x)
    }
    #[inline(always)]
    fn key(x: u32) -> u32 {
        x
    }
    #[inline(always)]
    fn from_key(k: u32) -> u32 {
        k
    }
    #[inline(always)]
    fn keys(v: u32x8, _nan_key: u32) -> u32x8 {
        v
    }
    #[inline(always)]
    fn is_nan(_: u32) -> bool {
        false
    }
}

/// `dst[i] = s(src[i])`, 8 lanes at a time with `v`, the tail with `s`.
#[inline(always)]
pub fn map<T: Lanes>(src: &[T], dst: &mut [T], v: impl Fn(T::V) -> T::V, s: impl Fn(T) -> T) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    let body = n - n % LANES;
    for (a, d) in src[..body]
        .chunks_exact(LANES)
        .zip(dst[..body].chunks_exact_mut(LANES))
    {
        T::store(v(T::load(a)), d);
    }
    for (a, d) in src[body..].iter().zip(&mut dst[body..]) {
        *d = s(*a);
    }
}

/// `dst[i] = s(a[i], b[i])`, 8 lanes at a time with `v`, the tail with `s`.
#[inline(always)]
pub fn zip<T: Lanes>(
    a: &[T],
    b: &[T],
    dst: &mut [T],
    v: impl Fn(T::V, T::V) -> T::V,
    s: impl Fn(T, T) -> T,
) {
    let n = a.len().min(b.len()).min(dst.len());
    let (a, b, dst) = (&a[..n], &b[..n], &mut dst[..n]);
    let body = n - n % LANES;
    for ((x, y), d) in a[..body]
        .chunks_exact(LANES)
        .zip(b[..body].chunks_exact(LANES))
        .zip(dst[..body].chunks_exact_mut(LANES))
    {
        T::store(v(T::load(x), T::load(y)), d);
    }
    for ((x, y), d) in a[body..].iter().zip(&b[body..]).zip(&mut dst[body..]) {
        *d = s(*x, *y);
    }
}

/// Pairwise sum of `f(a[i], b[i])` terms: leaves of `PAIRWISE_LEAF` (256)
/// elements are summed in four 8-lane accumulators, leaves are combined in a
/// binary tree. Rounding error grows like log2(n).
pub fn pairwise_sum_f32(
    a: &[f32],
    b: &[f32],
    v: &impl Fn(f32x8, f32x8, f32x8) -> f32x8,
    s: &impl Fn(f32, f32, f32) -> f32,
) -> f32 {
    let n = a.len();
    if n <= PAIRWISE_LEAF {
        let mut acc = [f32x8::ZERO; 4];
        let body = n - n % (4 * LANES);
        for (x, y) in a[..body]
            .chunks_exact(4 * LANES)
            .zip(b[..body].chunks_exact(4 * LANES))
        {
            for (k, acc) in acc.iter_mut().enumerate() {
                let r = k * LANES..(k + 1) * LANES;
                *acc = v(f32::load(&x[r.clone()]), f32::load(&y[r]), *acc);
            }
        }
        let mut tail = 0.0f32;
        for (x, y) in a[body..].iter().zip(&b[body..]) {
            tail = s(*x, *y, tail);
        }
        let v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        let l = v.to_array();
        let lanes = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        return lanes + tail;
    }
    // Split on a multiple of the leaf so leaves stay full.
    let mid = (n / 2).div_ceil(PAIRWISE_LEAF) * PAIRWISE_LEAF;
    pairwise_sum_f32(&a[..mid], &b[..mid], v, s) + pairwise_sum_f32(&a[mid..], &b[mid..], v, s)
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
    let mut acc = [u32x8::splat(ident); 4];
    let body = x.len() - x.len() % (4 * LANES);
    for c in x[..body].chunks_exact(4 * LANES) {
        for (k, acc) in acc.iter_mut().enumerate() {
            let keys = T::keys(T::load(&c[k * LANES..]), ident);
            *acc = if max { acc.max(keys) } else { acc.min(keys) };
        }
    }
    let v = if max {
        acc[0].max(acc[1]).max(acc[2].max(acc[3]))
    } else {
        acc[0].min(acc[1]).min(acc[2].min(acc[3]))
    };
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
    let target = u32x8::splat(key);
    let body = x.len() - x.len() % LANES;
    for (i, c) in x[..body].chunks_exact(LANES).enumerate() {
        let hit = T::keys(T::load(c), ident).simd_eq(target);
        if hit.any() {
            let lanes = hit.to_array();
            let lane = lanes.iter().position(|&m| m != 0).unwrap_or(0);
            return Some(i * LANES + lane);
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
        let lanes = f32::keys(
            f32x8::from([-0.0, 0.0, 1.0, f32::NAN, -2.0, 3.0, -f32::NAN, 5.0]),
            7,
        );
        let a = lanes.to_array();
        assert_eq!(a[0], f32::key(-0.0));
        assert_eq!(a[2], f32::key(1.0));
        assert_eq!(a[3], 7);
        assert_eq!(a[6], 7);
        assert_eq!(a[4], f32::key(-2.0));
    }

    #[test]
    fn int_keys_order_like_values() {
        for w in [i32::MIN, -1, 0, 1, i32::MAX].windows(2) {
            assert!(i32::key(w[0]) < i32::key(w[1]));
        }
        assert_eq!(i32::from_key(i32::key(-7)), -7);
    }
}
