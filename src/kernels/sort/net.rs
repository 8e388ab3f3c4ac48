//! Bitonic sorting networks in AVX-512 registers: the leaves of the
//! keys-only MSD sort ([`super::msd`]).
//!
//! A leaf of up to [`Word::NET_MAX`](super::Word::NET_MAX) keys (256 `u32`
//! or 128 `u64`: sixteen registers) is loaded into as many registers as it
//! fills, padded with the largest key, sorted by a bitonic network of
//! compare-exchanges (min and max of a register and a permutation of it, or
//! of two registers), and stored back without the padding. The network is
//! that of the next power of two of registers, less the registers of
//! padding alone, which it never needs to touch (`sort_regs`'s doc says
//! why). The network's work does not depend on the keys, so it has no
//! branch to mispredict, which is what the insertion pass it replaces paid
//! for most.
//!
//! Padding with the largest key is exact: the padded keys sort last, and
//! a real key equal to them has the same bits.
//!
//! Only builds with AVX-512F enabled at compile time (`target-cpu=native`
//! on a machine that has it) have the networks; elsewhere `NET_MAX` is 0
//! and the MSD sort finishes its leaves by insertion.

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
pub(super) use avx512::{sort_u32, sort_u64};

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod avx512 {
    use std::arch::x86_64::*;

    /// A key word held in 512-bit registers.
    trait Lanes: Copy {
        /// Keys per register.
        const N: usize;
        fn min(a: __m512i, b: __m512i) -> __m512i;
        fn max(a: __m512i, b: __m512i) -> __m512i;
        /// Lane `i` of the result is lane `i ^ (1 << t)` of `a`.
        fn swap(t: usize, a: __m512i) -> __m512i;
        /// The lanes of `a` in reverse order.
        fn reverse(a: __m512i) -> __m512i;
        /// `max(a, b)` in the lanes in `mask`, `src` in the others.
        fn max_where(mask: u32, src: __m512i, a: __m512i, b: __m512i) -> __m512i;
        /// The keys at `p..p + min(m, N)`, the rest the largest key.
        ///
        /// # Safety
        /// Those `min(m, N)` keys must be readable.
        unsafe fn load(p: *const Self, m: usize) -> __m512i;
        /// Stores the first `min(m, N)` lanes at `p`.
        ///
        /// # Safety
        /// Those `min(m, N)` keys must be writable.
        unsafe fn store(p: *mut Self, v: __m512i, m: usize);
    }

    /// A vector of `L` lane indices (`idx[i]` for lane `i`) as 64-bit
    /// words: two `u32` indices a word for 16 lanes, one for 8.
    const fn pack<const L: usize>(idx: [usize; 16]) -> [i64; 8] {
        let mut out = [0i64; 8];
        let mut i = 0;
        while i < L {
            let v = idx[i] as i64;
            if L == 16 {
                out[i / 2] |= v << (32 * (i % 2));
            } else {
                out[i] = v;
            }
            i += 1;
        }
        out
    }

    /// The lane indices `L - 1 - i`, packed.
    const fn reversed<const L: usize>() -> [i64; 8] {
        let mut idx = [0usize; 16];
        let mut i = 0;
        while i < L {
            idx[i] = L - 1 - i;
            i += 1;
        }
        pack::<L>(idx)
    }

    const REVERSE32: [i64; 8] = reversed::<16>();
    const REVERSE64: [i64; 8] = reversed::<8>();

    /// Lane `i` of the result is lane `i ^ (1 << t)` of `a`, for 32-bit
    /// lanes: pairs and quads of lanes swap inside 128-bit blocks
    /// (`vpshufd`, one cycle), blocks and block pairs swap whole
    /// (`vshufi64x2`). A lane-index permutation (`vpermd`) costs several
    /// cycles of latency at every one of a register sort's ten stages.
    #[inline(always)]
    fn swap32(t: usize, a: __m512i) -> __m512i {
        // SAFETY: AVX-512F is enabled (this module's cfg).
        unsafe {
            match t {
                0 => _mm512_shuffle_epi32::<0xB1>(a),
                1 => _mm512_shuffle_epi32::<0x4E>(a),
                2 => _mm512_shuffle_i64x2::<0xB1>(a, a),
                _ => _mm512_shuffle_i64x2::<0x4E>(a, a),
            }
        }
    }

    /// [`swap32`] for 64-bit lanes.
    #[inline(always)]
    fn swap64(t: usize, a: __m512i) -> __m512i {
        // SAFETY: AVX-512F is enabled (this module's cfg).
        unsafe {
            match t {
                0 => _mm512_shuffle_epi32::<0x4E>(a),
                1 => _mm512_shuffle_i64x2::<0xB1>(a, a),
                _ => _mm512_shuffle_i64x2::<0x4E>(a, a),
            }
        }
    }

    #[inline(always)]
    fn index(w: &[i64; 8]) -> __m512i {
        // SAFETY: AVX-512F is enabled (this module's cfg).
        unsafe { _mm512_set_epi64(w[7], w[6], w[5], w[4], w[3], w[2], w[1], w[0]) }
    }

    /// The [`Lanes`] impl of one key word: its lane count and masks, then
    /// the AVX-512F intrinsics of its lane width.
    macro_rules! lanes {
        (
            $t:ty, $n:literal, $mask:ty, $swap:ident, $reverse:ident,
            $min:ident, $max:ident, $mask_max:ident, $perm:ident, $set1:ident, $loadu:ident,
            $storeu:ident
        ) => {
            impl Lanes for $t {
                const N: usize = $n;
                #[inline(always)]
                fn min(a: __m512i, b: __m512i) -> __m512i {
                    // SAFETY: AVX-512F is enabled (this module's cfg).
                    unsafe { $min(a, b) }
                }
                #[inline(always)]
                fn max(a: __m512i, b: __m512i) -> __m512i {
                    // SAFETY: AVX-512F is enabled (this module's cfg).
                    unsafe { $max(a, b) }
                }
                #[inline(always)]
                fn swap(t: usize, a: __m512i) -> __m512i {
                    $swap(t, a)
                }
                #[inline(always)]
                fn reverse(a: __m512i) -> __m512i {
                    // SAFETY: AVX-512F is enabled (this module's cfg).
                    unsafe { $perm(index(&$reverse), a) }
                }
                #[inline(always)]
                fn max_where(mask: u32, src: __m512i, a: __m512i, b: __m512i) -> __m512i {
                    // SAFETY: AVX-512F is enabled (this module's cfg).
                    unsafe { $mask_max(src, mask as $mask, a, b) }
                }
                #[inline(always)]
                unsafe fn load(p: *const $t, m: usize) -> __m512i {
                    let k = if m >= $n { !0 } else { (1u32 << m) - 1 };
                    // SAFETY: the caller makes the `min(m, N)` masked-in
                    // keys readable; masked-out lanes are not accessed.
                    unsafe { $loadu($set1(-1), k as $mask, p.cast()) }
                }
                #[inline(always)]
                unsafe fn store(p: *mut $t, v: __m512i, m: usize) {
                    let k = if m >= $n { !0 } else { (1u32 << m) - 1 };
                    // SAFETY: as for `load`, for writes.
                    unsafe { $storeu(p.cast(), k as $mask, v) }
                }
            }
        };
    }

    lanes!(
        u32,
        16,
        __mmask16,
        swap32,
        REVERSE32,
        _mm512_min_epu32,
        _mm512_max_epu32,
        _mm512_mask_max_epu32,
        _mm512_permutexvar_epi32,
        _mm512_set1_epi32,
        _mm512_mask_loadu_epi32,
        _mm512_mask_storeu_epi32
    );
    lanes!(
        u64,
        8,
        __mmask8,
        swap64,
        REVERSE64,
        _mm512_min_epu64,
        _mm512_max_epu64,
        _mm512_mask_max_epu64,
        _mm512_permutexvar_epi64,
        _mm512_set1_epi64,
        _mm512_mask_loadu_epi64,
        _mm512_mask_storeu_epi64
    );

    /// One compare-exchange of `x` with its lanes `1 << t` apart: the lanes
    /// in `take_max` keep the larger key of their pair.
    #[inline(always)]
    fn within<L: Lanes>(x: __m512i, t: usize, take_max: u32) -> __m512i {
        let y = L::swap(t, x);
        L::max_where(take_max, L::min(x, y), x, y)
    }

    /// The lanes that keep the larger key at stage `(k, j)` (`k`, `j` as
    /// log2) of a bitonic sort within a register: lane `i` ascends where
    /// bit `k` of `i` is clear, and keeps the larger key where it is the
    /// upper lane of an ascending pair or the lower of a descending one.
    const fn take_max(k: usize, j: usize, n: usize) -> u32 {
        let mut mask = 0;
        let mut i = 0;
        while i < n {
            let up = (i >> k) & 1 == 0;
            let upper = (i >> j) & 1 == 1;
            if up == upper {
                mask |= 1 << i;
            }
            i += 1;
        }
        mask
    }

    /// Sorts one register ascending.
    #[inline(always)]
    fn sort_vec<L: Lanes>(mut x: __m512i) -> __m512i {
        let bits = L::N.trailing_zeros() as usize;
        // Blocks of 2, 4, ... lanes, alternately ascending and descending,
        // then the whole register ascending.
        for k in 1..bits {
            for j in (0..k).rev() {
                x = within::<L>(x, j, take_max(k, j, L::N));
            }
        }
        merge_vec::<L>(x)
    }

    /// Sorts a bitonic register ascending: the last stage of [`sort_vec`],
    /// whose one block is the whole register.
    #[inline(always)]
    fn merge_vec<L: Lanes>(mut x: __m512i) -> __m512i {
        let bits = L::N.trailing_zeros() as usize;
        for j in (0..bits).rev() {
            x = within::<L>(x, j, take_max(bits, j, L::N));
        }
        x
    }

    /// Sorts `m` keys from `src` into `dst` (which may be `src`) in `RR`
    /// registers, `m <= RR * N`, as a network of `R` (the power of two
    /// from `RR` up) whose last `R - RR` registers hold only padding.
    ///
    /// Every merge is ascending: the first step of a merge compares each
    /// key of a run's first half with its mirror in the second half (the
    /// "flip"), the rest halve as usual. A register of padding then only
    /// ever meets a lower register that keeps the smaller keys, so its
    /// compare-exchanges change nothing and are left out, and the network
    /// costs what `RR` registers cost.
    ///
    /// # Safety
    /// `src` must be readable and `dst` writable for `m` keys.
    #[inline(always)]
    unsafe fn sort_regs<L: Lanes, const R: usize, const RR: usize>(
        src: *const L,
        dst: *mut L,
        m: usize,
    ) {
        let n = L::N;
        let mut v: [__m512i; R] = std::array::from_fn(|r| {
            // SAFETY: each load reads only the keys below `m`.
            unsafe { L::load(src.wrapping_add(r * n), m.saturating_sub(r * n)) }
        });
        for x in v.iter_mut().take(RR) {
            *x = sort_vec::<L>(*x);
        }
        // Merge sorted runs of `w` registers into runs of `2w`.
        let mut w = 1;
        while w < R {
            let run = 2 * w;
            for s in (0..R).step_by(run) {
                for r in 0..w {
                    let (a, b) = (s + r, s + run - 1 - r);
                    if b < RR {
                        let rev = L::reverse(v[b]);
                        let (lo, hi) = (L::min(v[a], rev), L::max(v[a], rev));
                        v[a] = lo;
                        v[b] = L::reverse(hi);
                    }
                }
            }
            let mut d = w / 2;
            while d >= 1 {
                for r in 0..RR {
                    let p = r ^ d;
                    if p > r && p < RR {
                        let (lo, hi) = (L::min(v[r], v[p]), L::max(v[r], v[p]));
                        (v[r], v[p]) = (lo, hi);
                    }
                }
                d /= 2;
            }
            for x in v.iter_mut().take(RR) {
                *x = merge_vec::<L>(*x);
            }
            w = run;
        }
        for (r, x) in v.iter().enumerate().take(RR) {
            // SAFETY: each store writes only the keys below `m`.
            unsafe { L::store(dst.wrapping_add(r * n), *x, m.saturating_sub(r * n)) };
        }
    }

    /// Sorts `m` keys, `m <= 16 * N`, in as many registers as they fill.
    ///
    /// # Safety
    /// As for [`sort_regs`].
    #[inline(always)]
    unsafe fn sort<L: Lanes>(src: *const L, dst: *mut L, m: usize) {
        // SAFETY: forwarded.
        unsafe {
            match m.div_ceil(L::N) {
                0 | 1 => sort_regs::<L, 1, 1>(src, dst, m),
                2 => sort_regs::<L, 2, 2>(src, dst, m),
                3 => sort_regs::<L, 4, 3>(src, dst, m),
                4 => sort_regs::<L, 4, 4>(src, dst, m),
                5 => sort_regs::<L, 8, 5>(src, dst, m),
                6 => sort_regs::<L, 8, 6>(src, dst, m),
                7 => sort_regs::<L, 8, 7>(src, dst, m),
                8 => sort_regs::<L, 8, 8>(src, dst, m),
                9 => sort_regs::<L, 16, 9>(src, dst, m),
                10 => sort_regs::<L, 16, 10>(src, dst, m),
                11 => sort_regs::<L, 16, 11>(src, dst, m),
                12 => sort_regs::<L, 16, 12>(src, dst, m),
                13 => sort_regs::<L, 16, 13>(src, dst, m),
                14 => sort_regs::<L, 16, 14>(src, dst, m),
                15 => sort_regs::<L, 16, 15>(src, dst, m),
                _ => sort_regs::<L, 16, 16>(src, dst, m),
            }
        }
    }

    /// Sorts `src` into `dst` (same length, at most 256 keys), or `dst` in
    /// place when `src` is `None`.
    pub(in crate::kernels::sort) fn sort_u32(src: Option<&[u32]>, dst: &mut [u32]) {
        let m = dst.len();
        assert!(m <= 256 && src.is_none_or(|s| s.len() == m));
        let from = src.map_or(dst.as_ptr(), <[u32]>::as_ptr);
        // SAFETY: both slices hold `m` keys (checked above); all keys are
        // loaded before any is stored, so `from` may be `dst`.
        unsafe { sort::<u32>(from, dst.as_mut_ptr(), m) }
    }

    /// [`sort_u32`] for `u64` keys, at most 128.
    pub(in crate::kernels::sort) fn sort_u64(src: Option<&[u64]>, dst: &mut [u64]) {
        let m = dst.len();
        assert!(m <= 128 && src.is_none_or(|s| s.len() == m));
        let from = src.map_or(dst.as_ptr(), <[u64]>::as_ptr);
        // SAFETY: as for `sort_u32`.
        unsafe { sort::<u64>(from, dst.as_mut_ptr(), m) }
    }
}
