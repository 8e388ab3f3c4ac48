//! The f64 cases with their own serial loops and Rust peers: the sum (a
//! read-bandwidth kernel) and the sort (eight LSD radix passes on the GPU,
//! MSD passes down to cache-sized buckets on the CPU); and the gemm
//! cases of both floats (DGEMM's roofline is the f64 FMA peak). Every other
//! f64 kernel gets the catalogue's generic case.

use rayon::prelude::*;
use tandem::kernels::{Gemm, Sort, Sum};

use crate::cases::{Case, ELEMENTS, SEED_X, SEED_Y, SQUARE, bench, xorshift};

/// `n` f64 in `[0.5, 2.0)` with every significand bit drawn.
pub(crate) fn random_f64(n: usize, seed: u64) -> Vec<f64> {
    let (mut a, mut b) = (xorshift(n, seed), xorshift(n, seed ^ 0x9e37_79b9));
    (0..n)
        .map(|_| {
            let bits = (u64::from(a.next().unwrap_or(0)) << 29) ^ u64::from(b.next().unwrap_or(0));
            0.5 + 1.5 * ((bits & ((1 << 53) - 1)) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

/// Pairwise f64 sum against the serial loop and rayon's sum.
pub(crate) fn sum_f64() -> Case {
    Case::new("sum_f64", "reduce", ELEMENTS, |n| {
        bench(random_f64(n, SEED_X), Sum, |x: &Vec<f64>| {
            x.iter().sum::<f64>()
        })
        .peer("rayon", |x: &Vec<f64>| x.par_iter().sum::<f64>())
    })
}

/// f64 keys against `sort_unstable_by(total_cmp)` and rayon's parallel
/// unstable sort, into reused vectors.
pub(crate) fn sort_f64() -> Case {
    Case::new("sort_f64", "sort", ELEMENTS, |n| {
        let (mut out, mut peer) = (Vec::new(), Vec::new());
        bench(random_f64(n, SEED_X), Sort, move |x: &Vec<f64>| {
            out.clear();
            out.extend_from_slice(x);
            out.sort_unstable_by(f64::total_cmp);
            out.last().copied()
        })
        .peer("rayon par_sort_unstable", move |x: &Vec<f64>| {
            peer.clear();
            peer.extend_from_slice(x);
            peer.par_sort_unstable_by(f64::total_cmp);
            peer.last().copied()
        })
    })
}

/// A float type with a `matrixmultiply` GEMM: the peer of the gemm cases.
pub(crate) trait Blas:
    tandem::Element + Default + std::ops::Mul<Output = Self> + std::ops::AddAssign
{
    /// `n` values in `[0.5, 2.0)`.
    fn random(n: usize, seed: u64) -> Vec<Self>;
    /// `c = a·b` for row-major `n×n` matrices.
    fn peer(n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

macro_rules! blas {
    ($t:ty, $random:path, $gemm:path) => {
        impl Blas for $t {
            fn random(n: usize, seed: u64) -> Vec<$t> {
                $random(n, seed)
            }
            fn peer(n: usize, a: &[$t], b: &[$t], c: &mut [$t]) {
                assert!(a.len() >= n * n && b.len() >= n * n && c.len() >= n * n);
                // SAFETY: `a`, `b` and `c` hold n·n values each (checked),
                // row-major with row stride n and column stride 1, and `c`
                // aliases neither (it is a distinct `&mut`).
                unsafe {
                    $gemm(
                        n,
                        n,
                        n,
                        1.0,
                        a.as_ptr(),
                        n as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            }
        }
    };
}
blas!(f32, crate::cases::random_f32, matrixmultiply::sgemm);
blas!(f64, random_f64, matrixmultiply::dgemm);

/// Square GEMM `C = A·B` (`m = n = k`) in `R` against the naive i-k-j triple
/// loop (the row-streaming order LLVM vectorizes) into a reused `C`, and
/// `matrixmultiply`. Its roofline is the FMA peak of `R`.
pub(crate) fn gemm_of<R: Blas>(name: &'static str) -> Case
where
    Gemm: for<'a> tandem::Kernel<
            (&'a tandem::Buffer<R>, &'a tandem::Buffer<R>),
            Out = tandem::Buffer<R>,
        >,
{
    Case::new(name, "gemm", SQUARE, |n| {
        let (mut c, mut peer) = (Vec::new(), Vec::new());
        let data = (R::random(n * n, SEED_X), R::random(n * n, SEED_Y));
        bench(
            data,
            Gemm::new(n, n, n),
            move |(a, b): &(Vec<R>, Vec<R>)| {
                c.clear();
                c.resize(n * n, R::default());
                for i in 0..n {
                    let row = &mut c[i * n..(i + 1) * n];
                    for p in 0..n {
                        let aip = a[i * n + p];
                        for (cj, &bj) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                            *cj += aip * bj;
                        }
                    }
                }
                c.last().copied()
            },
        )
        .peer("matrixmultiply", move |(a, b): &(Vec<R>, Vec<R>)| {
            peer.resize(n * n, R::default());
            R::peer(n, a, b, &mut peer);
            peer.last().copied()
        })
    })
    .serial_max(512 * 512, "the naive loop is O(n³)")
    // Lavapipe: 0.13 s a call at 256², 1 s at 512², 6 s at 1024² (f32).
    .software_gpu_max(256 * 256)
}
