//! `Gemm` on every backend against an f64 oracle.
//!
//! Bound: each element of `α·op(A)·op(B) + β·C` is within
//! `c·(k + 2)·ε·(|α|·Σ_p |a_ip·b_pj| + |β·c_ij|)` of the exact (f64) value,
//! with `c = 2` and `ε = f32::EPSILON` (the classic `k·u` bound for a
//! length-`k` dot product is `k·ε/2`; the `+ 2` covers the scaling by `α`
//! and the addition of `β·C`). Shapes: empty dimensions, 1×1, 1×n, n×1,
//! 17×33 with k 7, 31, 65, 257×129×65, the GPU tile (64) and CPU register
//! tile and depth block boundaries ± 1, every transpose combination, `α`/`β` with and
//! without `C`, and one result with more than 65,535 GPU tiles (a 2-D
//! dispatch). Products larger than one GPU binding run in blocks (tested
//! with 64 KiB bindings, split along m, n and k). Errors: every bad length,
//! `β ≠ 0` without `C`, and an overflowing `m·n·k`.

mod common;

use common::Rng;
use common::*;
use proptest::prelude::*;
use tandem::kernels::Gemm;
use tandem::{Backend, Buffer, Engine, Error, Kernel};

/// The bound's constant `c`.
const C_BOUND: f64 = 2.0;

/// Buffers of `op(A)`'s and `op(B)`'s storage for `g`, values in [-1, 1).
fn inputs(g: &Gemm, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    (
        rng.f32s(g.m * g.k, -1.0, 1.0),
        rng.f32s(g.k * g.n, -1.0, 1.0),
        rng.f32s(g.m * g.n, -1.0, 1.0),
    )
}

/// op(A)[i, p] from its storage.
fn at_a(g: &Gemm, a: &[f32], i: usize, p: usize) -> f64 {
    f64::from(if g.transpose_a {
        a[p * g.m + i]
    } else {
        a[i * g.k + p]
    })
}

/// op(B)[p, j] from its storage.
fn at_b(g: &Gemm, b: &[f32], p: usize, j: usize) -> f64 {
    f64::from(if g.transpose_b {
        b[j * g.k + p]
    } else {
        b[p * g.n + j]
    })
}

/// The exact result (f64) and each element's error bound. `c` is used only
/// when `β ≠ 0`, as the kernel documents.
fn oracle(g: &Gemm, a: &[f32], b: &[f32], c: Option<&[f32]>) -> (Vec<f64>, Vec<f64>) {
    let eps = f64::from(f32::EPSILON);
    // An f32 product scales by α and β rounded to f32.
    let (alpha, beta) = (f64::from(g.alpha as f32), f64::from(g.beta as f32));
    let mut want = Vec::with_capacity(g.m * g.n);
    let mut tol = Vec::with_capacity(g.m * g.n);
    for i in 0..g.m {
        for j in 0..g.n {
            let (mut s, mut abs) = (0.0f64, 0.0f64);
            for p in 0..g.k {
                let t = at_a(g, a, i, p) * at_b(g, b, p, j);
                s += t;
                abs += t.abs();
            }
            let mut v = alpha * s;
            let mut mag = alpha.abs() * abs;
            if let Some(c) = c.filter(|_| g.beta != 0.0) {
                let cv = beta * f64::from(c[i * g.n + j]);
                v += cv;
                mag += cv.abs();
            }
            want.push(v);
            tol.push(C_BOUND * (g.k as f64 + 2.0) * eps * mag + f64::from(f32::MIN_POSITIVE));
        }
    }
    (want, tol)
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (idx, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= t,
            "{what}: element {idx}: got {g:e}, want {w:e} (error {err:e} > bound {t:e})"
        );
    }
}

/// Runs `g` on `engine` with or without `C`.
fn run(
    engine: &Engine,
    g: &Gemm,
    a: &[f32],
    b: &[f32],
    c: Option<&[f32]>,
) -> tandem::Result<Vec<f32>> {
    let (a, b) = (Buffer::from(a), Buffer::from(b));
    let out = match c {
        Some(c) => engine.run(g, (&a, &b, &Buffer::from(c)))?,
        None => engine.run(g, (&a, &b))?,
    };
    out.to_vec()
}

/// Checks `g` on every backend, without `C` (when `β = 0`) and with it.
fn check(g: Gemm, seed: u64) {
    let (a, b, c) = inputs(&g, seed);
    for (backend, engine) in backends() {
        for with_c in [false, true] {
            if !with_c && g.beta != 0.0 {
                continue;
            }
            let c = with_c.then_some(c.as_slice());
            let what = format!("{backend:?} {g:?} with C: {with_c}");
            let got = run(&engine, &g, &a, &b, c).unwrap_or_else(|e| panic!("{what}: {e}"));
            let (want, tol) = oracle(&g, &a, &b, c);
            assert_close(&what, &got, &want, &tol);
        }
    }
}

/// Every transpose combination of `g`.
fn transposes(g: Gemm) -> [Gemm; 4] {
    [(false, false), (true, false), (false, true), (true, true)]
        .map(|(ta, tb)| g.transpose_a(ta).transpose_b(tb))
}

/// Every `(m, n, k)` of `shapes` in every transpose combination.
fn check_shapes(shapes: &[(usize, usize, usize)]) {
    for &(m, n, k) in shapes {
        for g in transposes(Gemm::new(m, n, k)) {
            check(g, (m * 1000 + n * 10 + k) as u64);
        }
    }
}

#[test]
fn tiny_and_degenerate_shapes_match_the_oracle() {
    check_shapes(&[
        (1, 1, 1),
        (1, 9, 5),
        (1, 40, 3),
        (9, 1, 5),
        (40, 1, 3),
        (3, 4, 1),
    ]);
}

#[test]
fn ragged_17_by_33_matches_the_oracle_for_every_k_and_transpose() {
    for k in [7, 31, 65] {
        for g in transposes(Gemm::new(17, 33, k)) {
            check(g, k as u64);
        }
    }
}

#[test]
fn shape_257_129_65_matches_the_oracle_for_every_transpose() {
    for g in transposes(Gemm::new(257, 129, 65)) {
        check(g, 257);
    }
}

#[test]
fn tile_boundaries_plus_minus_one_match_the_oracle() {
    // GPU tile 64 (and k step 16); CPU register tile 6 × 16 (AVX2) or
    // 14 × 32 (AVX-512, f32), CPU depth 256 (AVX2) or 512 (AVX-512).
    check_shapes(&[
        (63, 64, 15),
        (64, 65, 16),
        (65, 63, 17),
        (5, 15, 255),
        (6, 16, 256),
        (7, 17, 257),
        (13, 31, 511),
        (14, 32, 512),
        (15, 33, 513),
        (12, 32, 1025),
    ]);
}

#[test]
fn cpu_blocks_larger_than_one_packed_block_match_the_oracle() {
    // Past MC_MAX (144) rows, NC (3072) columns and KC (256 or 512) depth, and
    // enough flops to run on more than one thread.
    // (Both above the CPU's 2^24-flop parallel threshold.)
    check(Gemm::new(300, 3100, 10), 1);
    check(Gemm::new(301, 97, 600).alpha(0.5), 2);
}

#[test]
fn concurrent_parallel_cpu_calls_on_one_pool_match_the_oracle() {
    // Several threads calling a parallel CPU gemm on one engine: the pool's
    // workers, waiting in one call's joins, run tasks of the others, and
    // every call must still get its own packed blocks.
    let engine = Engine::builder().threads(2).gpu(false).build().unwrap();
    let g = Gemm::new(160, 300, 400);
    let (a, b, _) = inputs(&g, 7);
    let (want, tol) = oracle(&g, &a, &b, None);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (engine, g, a, b, want, tol) = (&engine, &g, &a, &b, &want, &tol);
            s.spawn(move || {
                for i in 0..8 {
                    let got = run(engine, g, a, b, None).unwrap();
                    assert_close(&format!("thread {t} call {i}"), &got, want, tol);
                }
            });
        }
    });
}

#[test]
fn alpha_and_beta_scale_the_product_and_c() {
    for (alpha, beta) in [(2.0, 0.0), (-0.5, 1.0), (1.0, -3.0), (0.0, 2.0)] {
        for g in transposes(Gemm::new(33, 70, 19).alpha(alpha).beta(beta)) {
            check(g, 7);
        }
    }
}

/// `A` = ones, `B` = ones, `C` full of NaN except what the test sets.
fn nan_case(engine: &Engine, beta: f64) -> Vec<f32> {
    let g = Gemm::new(5, 7, 3).beta(beta);
    let (a, b) = (vec![1.0f32; 15], vec![1.0f32; 21]);
    run(engine, &g, &a, &b, Some(&[f32::NAN; 35])).expect("gemm")
}

#[test]
fn beta_zero_ignores_nan_in_c_and_nonzero_beta_propagates_it() {
    for (backend, engine) in backends() {
        let ignored = nan_case(&engine, 0.0);
        assert_eq!(
            ignored,
            vec![3.0; 35],
            "{backend:?}: beta = 0 must not read C"
        );
        let propagated = nan_case(&engine, 1.0);
        assert!(
            propagated.iter().all(|v| v.is_nan()),
            "{backend:?}: beta = 1 must propagate NaN from C: {propagated:?}"
        );
    }
}

#[test]
fn nan_in_a_propagates_to_its_row_only() {
    let g = Gemm::new(4, 5, 3);
    let mut a = vec![1.0f32; 12];
    a[4] = f32::NAN; // row 1
    let b = vec![1.0f32; 15];
    for (backend, engine) in backends() {
        let got = run(&engine, &g, &a, &b, None).expect("gemm");
        for (idx, v) in got.iter().enumerate() {
            assert_eq!(v.is_nan(), idx / 5 == 1, "{backend:?}: element {idx} = {v}");
        }
    }
}

#[test]
fn empty_dimensions_give_empty_or_beta_c_without_dispatching() {
    let Some(gpu) = own_gpu_engine() else {
        // Still check the CPU.
        return empty_on(&engine().on(Backend::Cpu));
    };
    let before = gpu.stats();
    empty_on(&gpu);
    let after = gpu.stats().since(&before);
    assert_eq!(after.gpu_dispatches, 0, "no dispatch for an empty product");
    empty_on(&engine().on(Backend::Cpu));
}

fn empty_on(engine: &Engine) {
    for (m, n) in [(0, 5), (5, 0), (0, 0)] {
        let g = Gemm::new(m, n, 3);
        let got = run(engine, &g, &vec![1.0; m * 3], &vec![1.0; 3 * n], None).expect("gemm");
        assert!(got.is_empty(), "{g:?}");
    }
    // k = 0: zeros, or β·C.
    let g = Gemm::new(3, 4, 0);
    assert_eq!(
        run(engine, &g, &[], &[], None).expect("gemm"),
        vec![0.0; 12]
    );
    let c: Vec<f32> = (0..12).map(|x| x as f32).collect();
    let want: Vec<f32> = c.iter().map(|x| 2.0 * x).collect();
    let got = run(engine, &g.beta(2.0), &[], &[], Some(&c)).expect("gemm");
    assert_eq!(got, want);
    // β = 0 with k = 0 ignores C, NaN included.
    let got = run(engine, &g, &[], &[], Some(&[f32::NAN; 12])).expect("gemm");
    assert_eq!(got, vec![0.0; 12]);
}

#[test]
fn more_than_65535_gpu_tiles_fold_into_a_2d_dispatch() {
    // 65,536 tiles of 64 × 64 in one column: one past the 1-D limit.
    let g = Gemm::new(64 * 65_535 + 1, 1, 2).alpha(0.5);
    let mut rng = Rng::new(99);
    let a = rng.f32s(g.m * 2, -1.0, 1.0);
    let b = vec![1.0f32, 2.0];
    let want: Vec<f32> = a.chunks(2).map(|r| 0.5 * (r[0] + 2.0 * r[1])).collect();
    for (backend, engine) in backends() {
        let got = run(&engine, &g, &a, &b, None).expect("gemm");
        // One FMA and one product with exact inputs: within 1 ULP.
        assert_ulps(&format!("{backend:?}"), &got, &want, |_| 1);
    }
}

#[test]
fn a_long_depth_matches_the_oracle_on_every_backend() {
    // k past 2^17: on a software adapter the GPU walks k in blocks of
    // 2^15 (llvmpipe ends a shader's loops after 65,535 iterations in all,
    // and before the blocks this product came back wrong); elsewhere in
    // one dispatch. Small non-negative integers, so every partial sum is
    // exact (below 2^24) and a dropped step of k cannot hide in the
    // rounding bound.
    let (m, n, k) = (3, 5, (1 << 18) + 5);
    for g in transposes(Gemm::new(m, n, k)) {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 3 + 1) as f32).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 4) as f32).collect();
        let want: Vec<f32> = (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..k)
                    .map(|p| at_a(&g, &a, i, p) * at_b(&g, &b, p, j))
                    .sum::<f64>() as f32
            })
            .collect();
        for (backend, engine) in backends() {
            let got = run(&engine, &g, &a, &b, None).expect("gemm");
            assert_eq!(got, want, "{backend:?} {g:?}");
        }
    }
}

#[test]
fn products_larger_than_one_gpu_binding_run_in_blocks_and_match_the_oracle() {
    let Some(engine) = common::small_binding_engine() else {
        return;
    };
    let gpu = engine.on(Backend::Gpu);
    // 16,384 f32 per binding: A, B, C or all of them cross it, so blocks
    // split rows and columns of C and the depth k (later k blocks add into
    // the output: one 40,000-long dot product, and α·AB + β·C over k
    // blocks), in every transpose combination.
    let shapes = [
        (130, 2, 128),
        (200, 150, 100),
        (3, 5, 20_000),
        (1, 1, 40_000),
        (2, 20_000, 3),
        (70, 300, 90),
    ];
    for (i, &(m, n, k)) in shapes.iter().enumerate() {
        let crosses = [m * k, k * n, m * n]
            .iter()
            .any(|&len| (len * 4) as u64 > SMALL_BINDING);
        for (g, with_c) in transposes(Gemm::new(m, n, k).alpha(0.75))
            .into_iter()
            .map(|g| (g, false))
            .chain(transposes(Gemm::new(m, n, k).alpha(-0.5).beta(1.5)).map(|g| (g, true)))
        {
            let (a, b, c) = inputs(&g, 40 + i as u64);
            let c = with_c.then_some(c.as_slice());
            let before = gpu.stats();
            let got = run(&gpu, &g, &a, &b, c).unwrap_or_else(|e| panic!("{g:?}: {e}"));
            let (want, tol) = oracle(&g, &a, &b, c);
            assert_close(
                &format!("blocked {g:?} with C: {with_c}"),
                &got,
                &want,
                &tol,
            );
            let dispatches = gpu.stats().since(&before).gpu_dispatches;
            assert!(
                dispatches > u64::from(crosses),
                "{g:?}: {dispatches} dispatches"
            );
            // DGEMM: half as many elements per binding, windows aligned to
            // 32 elements instead of 64; the f32 bound holds a fortiori.
            let wide =
                |v: &[f32]| Buffer::from(v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>());
            let (a64, b64) = (wide(&a), wide(&b));
            let got64 = match c {
                Some(c) => gpu.run(&g, (&a64, &b64, &wide(c))),
                None => gpu.run(&g, (&a64, &b64)),
            };
            match got64 {
                Ok(got64) => {
                    let got64: Vec<f32> =
                        got64.to_vec().unwrap().iter().map(|&x| x as f32).collect();
                    assert_close(
                        &format!("blocked f64 {g:?} with C: {with_c}"),
                        &got64,
                        &want,
                        &tol,
                    );
                }
                Err(Error::Unsupported { .. }) => {}
                Err(e) => panic!("f64 {g:?}: {e}"),
            }
        }
    }
}

#[test]
fn dgemm_takes_alpha_and_beta_in_f64() {
    // 0.1 and 1/3 are not f32 values: rounded to f32 they put the result
    // off by about 1e-9 (3.3e-9 and 7.0e-9 seen), some 10^5 to 10^6 times
    // this test's bound of 16 ε of the magnitude.
    let (alpha, beta) = (0.1f64, 1.0 / 3.0);
    let (m, n, k) = (7, 9, 5);
    let mut rng = Rng::new(17);
    let a: Vec<f64> = (0..m * k).map(|_| f64::from(rng.f32(-1.0, 1.0))).collect();
    let b: Vec<f64> = (0..k * n).map(|_| f64::from(rng.f32(-1.0, 1.0))).collect();
    let c: Vec<f64> = (0..m * n).map(|_| f64::from(rng.f32(-1.0, 1.0))).collect();
    let g = Gemm::new(m, n, k).alpha(alpha).beta(beta);
    for (backend, engine) in backends() {
        let got = match engine.run(
            &g,
            (
                &Buffer::from(a.clone()),
                &Buffer::from(b.clone()),
                &Buffer::from(c.clone()),
            ),
        ) {
            Ok(got) => got.to_vec().unwrap(),
            // f64 masked or missing on this GPU.
            Err(Error::Unsupported { .. }) => continue,
            Err(e) => panic!("{backend:?}: {e}"),
        };
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                let want = alpha * dot + beta * c[i * n + j];
                let mag = (0..k)
                    .map(|p| (a[i * k + p] * b[p * n + j]).abs())
                    .sum::<f64>()
                    * alpha
                    + (beta * c[i * n + j]).abs();
                let err = (got[i * n + j] - want).abs();
                assert!(
                    err <= 16.0 * f64::EPSILON * mag,
                    "{backend:?} ({i}, {j}): got {}, want {want}, error {err:e}",
                    got[i * n + j]
                );
            }
        }
    }
}

fn invalid(engine: &Engine, g: &Gemm, a: usize, b: usize, c: Option<usize>) -> String {
    let (a, b) = (Buffer::from(vec![0.0f32; a]), Buffer::from(vec![0.0f32; b]));
    let r = match c {
        Some(c) => engine.run(g, (&a, &b, &Buffer::from(vec![0.0f32; c]))),
        None => engine.run(g, (&a, &b)),
    };
    match r {
        Err(Error::InvalidArgument {
            kernel: "gemm",
            message,
        }) => message,
        other => panic!("{g:?}: expected InvalidArgument from gemm, got {other:?}"),
    }
}

#[test]
fn every_bad_shape_is_an_invalid_argument_naming_the_sizes() {
    for (backend, engine) in backends() {
        let g = Gemm::new(3, 4, 5);
        let msg = invalid(&engine, &g, 14, 20, None);
        assert!(
            msg.contains("A has 14") && msg.contains("m=3 n=4 k=5"),
            "{backend:?}: {msg}"
        );
        let msg = invalid(&engine, &g, 15, 21, None);
        assert!(
            msg.contains("B has 21") && msg.contains("k·n = 20"),
            "{backend:?}: {msg}"
        );
        let msg = invalid(&engine, &g.beta(1.0), 15, 20, Some(11));
        assert!(
            msg.contains("C has 11") && msg.contains("m·n = 12"),
            "{backend:?}: {msg}"
        );
        let msg = invalid(&engine, &g.beta(1.0), 15, 20, None);
        assert!(
            msg.contains("beta = 1") && msg.contains("C input"),
            "{backend:?}: {msg}"
        );
        // Transposed shapes are checked by element count, and named.
        let msg = invalid(&engine, &g.transpose_a(true), 16, 20, None);
        assert!(msg.contains("transposed"), "{backend:?}: {msg}");
        // m·n·k past usize, with each product of two fitting.
        let big = 1usize << (usize::BITS / 2 - 1);
        let msg = invalid(&engine, &Gemm::new(big, big, 4), 0, 0, None);
        assert!(msg.contains("overflows"), "{backend:?}: {msg}");
        let msg = invalid(&engine, &Gemm::new(usize::MAX, 2, 1), 0, 0, None);
        assert!(msg.contains("overflows"), "{backend:?}: {msg}");
    }
}

#[test]
fn work_counts_flops_and_bytes_of_the_call() {
    let g = Gemm::new(10, 20, 30);
    let (a, b, c) = (
        Buffer::from(vec![0.0f32; 300]),
        Buffer::from(vec![0.0f32; 600]),
        Buffer::from(vec![0.0f32; 200]),
    );
    let w = g.work(&(&a, &b));
    assert_eq!(w.flops, 2 * 10 * 20 * 30 + 200);
    assert_eq!(w.bytes_read, (300 + 600) * 4);
    assert_eq!(w.bytes_written, 200 * 4);
    assert_eq!(w.elements, 200);
    let w = g.beta(1.0).work(&(&a, &b, &c));
    assert_eq!(w.flops, 2 * 10 * 20 * 30 + 400);
    assert_eq!(w.bytes_read, (300 + 600 + 200) * 4);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn gpu_equals_cpu_equals_oracle_on_random_shapes(
        m in 1usize..80, n in 1usize..80, k in 1usize..80,
        ta: bool, tb: bool, beta in prop::sample::select(vec![0.0f64, 1.5]),
        seed: u64,
    ) {
        let g = Gemm::new(m, n, k).transpose_a(ta).transpose_b(tb).alpha(-1.25).beta(beta);
        let (a, b, c) = inputs(&g, seed);
        let (want, tol) = oracle(&g, &a, &b, Some(&c));
        let mut results = Vec::new();
        for (backend, engine) in backends() {
            let got = run(&engine, &g, &a, &b, Some(&c)).expect("gemm");
            assert_close(&format!("{backend:?} {g:?}"), &got, &want, &tol);
            results.push(got);
        }
        // The backends agree with each other to twice the bound.
        if let [cpu, gpu] = results.as_slice() {
            for (i, (x, y)) in cpu.iter().zip(gpu).enumerate() {
                prop_assert!(f64::from((x - y).abs()) <= 2.0 * tol[i], "element {}: cpu {} gpu {}", i, x, y);
            }
        }
    }
}
