//! The f64 cases with their own serial loops and Rust peers: the sum (a
//! read-bandwidth kernel), the sort (eight radix passes) and DGEMM (the f64
//! FMA peak). Every other f64 kernel gets the catalogue's generic case.

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

/// Square DGEMM `C = A·B` against the naive i-k-j loop and
/// `matrixmultiply::dgemm`; its roofline is the f64 FMA peak.
pub(crate) fn gemm_f64() -> Case {
    Case::new("gemm_f64", "gemm", SQUARE, |n| {
        let (mut c, mut peer) = (Vec::new(), Vec::new());
        let data = (random_f64(n * n, SEED_X), random_f64(n * n, SEED_Y));
        bench(
            data,
            Gemm::new(n, n, n),
            move |(a, b): &(Vec<f64>, Vec<f64>)| {
                c.clear();
                c.resize(n * n, 0.0f64);
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
        .peer("matrixmultiply", move |(a, b): &(Vec<f64>, Vec<f64>)| {
            peer.resize(n * n, 0.0f64);
            // SAFETY: `a`, `b` and `peer` hold n·n f64 each, row-major with
            // row stride n and column stride 1, and `peer` aliases neither.
            unsafe {
                matrixmultiply::dgemm(
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
                    peer.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            peer.last().copied()
        })
    })
    .max_elements(2048 * 2048)
    .serial_max(512 * 512, "the naive loop is O(n³)")
    .software_gpu_max(256 * 256)
}
