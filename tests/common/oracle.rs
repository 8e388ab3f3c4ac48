//! Scalar oracles that more than one test binary checks against.

use tandem::kernels::Binary;

/// The integer types whose binary ops wrap and whose division by zero (or
/// `MIN / -1`) gives the dividend, as WGSL defines them.
pub(crate) trait WrapInt: Copy + Ord {
    fn wrapping_add(self, b: Self) -> Self;
    fn wrapping_sub(self, b: Self) -> Self;
    fn wrapping_mul(self, b: Self) -> Self;
    fn checked_div(self, b: Self) -> Option<Self>;
}

macro_rules! wrap_int {
    ($($t:ty),*) => {$(
        impl WrapInt for $t {
            fn wrapping_add(self, b: Self) -> Self { <$t>::wrapping_add(self, b) }
            fn wrapping_sub(self, b: Self) -> Self { <$t>::wrapping_sub(self, b) }
            fn wrapping_mul(self, b: Self) -> Self { <$t>::wrapping_mul(self, b) }
            fn checked_div(self, b: Self) -> Option<Self> { <$t>::checked_div(self, b) }
        }
    )*};
}
wrap_int!(i32, u32);

/// i32/u32 binary ops: add/sub/mul wrap; division by zero, or `MIN / -1`,
/// gives the dividend.
pub(crate) fn oracle_binary_int<T: WrapInt>(op: Binary, a: T, b: T) -> T {
    match op {
        Binary::Add => a.wrapping_add(b),
        Binary::Sub => a.wrapping_sub(b),
        Binary::Mul => a.wrapping_mul(b),
        Binary::Div => a.checked_div(b).unwrap_or(a),
        Binary::Min => a.min(b),
        Binary::Max => a.max(b),
        _ => unreachable!(),
    }
}

/// NaN-ignoring minimum/maximum with `-0.0 < +0.0`.
pub(crate) fn oracle_pick_f32(a: f32, b: f32, max: bool) -> f32 {
    if b.is_nan() {
        return a;
    }
    if a.is_nan() {
        return b;
    }
    let b_wins = if a == b {
        // Only zeros of opposite signs compare equal but differ.
        if max {
            a.is_sign_negative() && b.is_sign_positive()
        } else {
            a.is_sign_positive() && b.is_sign_negative()
        }
    } else {
        (b > a) == max
    };
    if b_wins { b } else { a }
}

/// [`oracle_pick_f32`] on f64: NaN-ignoring, `-0.0 < +0.0` (by the
/// order-preserving key of the bits).
pub(crate) fn oracle_pick_f64(a: f64, b: f64, max: bool) -> f64 {
    if b.is_nan() {
        return a;
    }
    if a.is_nan() {
        return b;
    }
    let key = |v: f64| {
        let b = v.to_bits();
        if b >> 63 != 0 { !b } else { b | 1 << 63 }
    };
    if key(a) != key(b) && (key(b) > key(a)) == max {
        b
    } else {
        a
    }
}

/// First index of the smallest (or largest) element.
pub(crate) fn oracle_arg_int<T: Copy + Ord>(x: &[T], max: bool) -> Option<(usize, T)> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in x.iter().enumerate() {
        if best.is_none_or(|(_, b)| if max { v > b } else { v < b }) {
            best = Some((i, v));
        }
    }
    best
}

/// First index of the smallest (or largest) non-NaN value; -0.0 < +0.0.
pub(crate) fn oracle_arg_f32(x: &[f32], max: bool) -> Option<(usize, f32)> {
    if x.is_empty() {
        return None;
    }
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in x.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        best = match best {
            None => Some((i, v)),
            Some((bi, bv)) => {
                let better = if v == bv {
                    // Equal values: only a zero of the other sign can be better.
                    if max {
                        bv.is_sign_negative() && !v.is_sign_negative()
                    } else {
                        !bv.is_sign_negative() && v.is_sign_negative()
                    }
                } else {
                    (v > bv) == max
                };
                if better { Some((i, v)) } else { Some((bi, bv)) }
            }
        };
    }
    Some(best.unwrap_or((0, f32::NAN)))
}
