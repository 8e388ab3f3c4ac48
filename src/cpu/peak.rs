//! The host's f32 (and f64) FMA peak, measured at the widest SIMD width the running
//! CPU has, whatever this build was compiled for: the roofline that
//! `compare` and the benches quote "% of peak" against.
//!
//! A build without `-C target-cpu=native` still measures the machine's real
//! peak (AVX-512 or AVX2+FMA, picked by runtime detection), so a kernel held
//! back by a narrow build shows as far from the peak rather than the peak
//! shrinking to match it.

use rayon::prelude::*;

use super::Cpu;
use super::simd::{self, F32, SimdLevel};

/// Independent FMA chains per thread: enough to cover the FMA latency on two
/// ports (4 cycles × 2), few enough to stay in registers.
pub const FMA_CHAINS: usize = 12;

/// The level [`fma_burst`] runs at on this CPU: AVX-512F or AVX2+FMA when
/// the CPU has them, else the build's own lanes.
pub fn fma_level() -> SimdLevel {
    match simd::detected_level() {
        l @ (SimdLevel::Avx512 | SimdLevel::Avx2Fma) => l,
        _ => simd::compiled_level(),
    }
}

/// Runs `steps` rounds of [`FMA_CHAINS`] independent vector FMAs at
/// [`fma_level`] on the calling thread. Returns a value to keep alive (so
/// nothing is optimised away) and the flops done.
pub fn fma_burst(steps: usize, seed: f32) -> (f32, u64) {
    fma_burst_of(steps, seed, Precision::F32)
}

/// The float type of an FMA burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 lanes.
    F32,
    /// f64 lanes: half as many per vector, at the same vector FMA rate.
    F64,
}

/// [`fma_burst`] in `precision`.
pub fn fma_burst_of(steps: usize, seed: f32, precision: Precision) -> (f32, u64) {
    let level = fma_level();
    let lanes = match precision {
        Precision::F32 => level.f32_lanes(),
        Precision::F64 => level.f32_lanes() / 2,
    };
    let flops = (steps * FMA_CHAINS * lanes * 2) as u64;
    #[cfg(target_arch = "x86_64")]
    {
        let f64 = precision == Precision::F64;
        // SAFETY: each arm runs only where runtime detection found the
        // instructions it is compiled for (avx512f; avx2 and fma).
        let v = unsafe {
            match (level, f64) {
                (SimdLevel::Avx512, true) => Some(x86::fma_avx512_pd(steps, seed)),
                (SimdLevel::Avx512, false) => Some(x86::fma_avx512(steps, seed)),
                (SimdLevel::Avx2Fma, true) => Some(x86::fma_avx2_pd(steps, seed)),
                (SimdLevel::Avx2Fma, false) => Some(x86::fma_avx2(steps, seed)),
                _ => None,
            }
        };
        if let Some(v) = v {
            return (v, flops);
        }
    }
    match precision {
        Precision::F32 => (fma_portable(steps, seed), flops),
        Precision::F64 => (fma_portable_f64(steps, seed), flops),
    }
}

/// f32 FMA throughput of all of `cpu`'s threads at once, in flop/s: the best
/// of `runs` bursts of `steps` rounds per thread. Many short bursts find
/// every core free on a shared machine more often than a few long ones (a
/// peak, not an average, is wanted).
pub fn fma_peak(cpu: &Cpu, steps: usize, runs: usize) -> f64 {
    fma_peak_of(cpu, steps, runs, Precision::F32)
}

/// [`fma_peak`] in `precision`: the f64 peak is the DGEMM roofline.
pub fn fma_peak_of(cpu: &Cpu, steps: usize, runs: usize, precision: Precision) -> f64 {
    (0..runs.max(1))
        .map(|_| burst_rate(cpu, steps, precision))
        .fold(0.0, f64::max)
}

/// The f32 and f64 peaks of [`fma_peak_of`], from bursts that alternate
/// between the precisions, so that a stretch in which a shared host takes
/// a core away lowers neither peak alone. Measured one after the other, a
/// shared VM once gave an f32 peak no higher than its f64 one (243 and 240
/// GFLOP/s), where every x86 FMA unit does twice the f32 flops.
pub fn fma_peaks(cpu: &Cpu, steps: usize, runs: usize) -> (f64, f64) {
    (0..runs.max(1)).fold((0.0f64, 0.0f64), |(f32s, f64s), _| {
        (
            f32s.max(burst_rate(cpu, steps, Precision::F32)),
            f64s.max(burst_rate(cpu, steps, Precision::F64)),
        )
    })
}

/// Flop/s of one [`fma_all_threads_of`] burst.
fn burst_rate(cpu: &Cpu, steps: usize, precision: Precision) -> f64 {
    let start = std::time::Instant::now();
    let flops = fma_all_threads_of(cpu, steps, precision);
    flops as f64 / start.elapsed().as_secs_f64()
}

/// One [`fma_burst`] of `steps` rounds on each of `cpu`'s threads at once;
/// returns the flops done.
pub fn fma_all_threads(cpu: &Cpu, steps: usize) -> u64 {
    fma_all_threads_of(cpu, steps, Precision::F32)
}

/// [`fma_all_threads`] in `precision`.
pub fn fma_all_threads_of(cpu: &Cpu, steps: usize, precision: Precision) -> u64 {
    let threads = cpu.threads();
    let (keep, flops) = cpu.install(|| {
        (0..threads)
            .into_par_iter()
            .with_max_len(1)
            .map(|t| fma_burst_of(steps, t as f32, precision))
            .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    std::hint::black_box(keep);
    flops
}

#[inline(never)]
fn fma_portable(steps: usize, seed: f32) -> f32 {
    let m = F32::splat(std::hint::black_box(0.999_999));
    let c = F32::splat(std::hint::black_box(1e-7));
    let mut acc: [F32; FMA_CHAINS] = std::array::from_fn(|i| F32::splat(seed + i as f32 * 1e-3));
    for _ in 0..steps {
        for a in &mut acc {
            *a = a.mul_add(m, c);
        }
    }
    acc.iter().map(|a| a.reduce_add()).sum()
}

#[inline(never)]
fn fma_portable_f64(steps: usize, seed: f32) -> f32 {
    let m = simd::F64::splat(std::hint::black_box(0.999_999));
    let c = simd::F64::splat(std::hint::black_box(1e-7));
    let mut acc: [simd::F64; FMA_CHAINS] =
        std::array::from_fn(|i| simd::F64::splat(f64::from(seed) + i as f64 * 1e-3));
    for _ in 0..steps {
        for a in &mut acc {
            *a = a.mul_add(m, c);
        }
    }
    acc.iter().map(|a| a.reduce_add()).sum::<f64>() as f32
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::FMA_CHAINS;

    /// One x86 FMA burst per vector width: the same loop, differing only in
    /// the register type and its intrinsics.
    macro_rules! burst {
        ($(#[$doc:meta])* $name:ident, $feature:literal, $v:ty, $t:ty, $lanes:literal,
         $set1:ident, $fmadd:ident, $storeu:ident) => {
            $(#[$doc])*
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(steps: usize, seed: f32) -> f32 {
                let m = $set1(std::hint::black_box(0.999_999));
                let c = $set1(std::hint::black_box(1e-7));
                let mut acc: [$v; FMA_CHAINS] =
                    std::array::from_fn(|i| $set1(<$t>::from(seed) + i as $t * 1e-3));
                for _ in 0..steps {
                    for a in &mut acc {
                        *a = $fmadd(*a, m, c);
                    }
                }
                let mut lanes = [0.0 as $t; $lanes];
                acc.iter()
                    .map(|&a| {
                        // SAFETY: `lanes` holds one vector's floats; storeu
                        // takes any alignment.
                        unsafe { $storeu(lanes.as_mut_ptr(), a) };
                        lanes.iter().sum::<$t>() as f32
                    })
                    .sum()
            }
        };
    }

    burst!(
        /// # Safety
        /// The CPU must have `avx512f`.
        fma_avx512, "avx512f", __m512, f32, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps
    );
    burst!(
        /// # Safety
        /// The CPU must have `avx2` and `fma`.
        fma_avx2, "avx2,fma", __m256, f32, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps
    );
    burst!(
        /// # Safety
        /// The CPU must have `avx512f`.
        fma_avx512_pd, "avx512f", __m512d, f64, 8, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_storeu_pd
    );
    burst!(
        /// # Safety
        /// The CPU must have `avx2` and `fma`.
        fma_avx2_pd, "avx2,fma", __m256d, f64, 4, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_storeu_pd
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_counts_its_flops_and_returns_a_finite_value() {
        let (v, flops) = fma_burst(1000, 1.0);
        assert!(v.is_finite());
        assert_eq!(
            flops,
            (1000 * FMA_CHAINS * fma_level().f32_lanes() * 2) as u64
        );
        assert!(fma_level().f32_lanes() >= simd::compiled_level().f32_lanes());
    }
}
