//! `Conv2d` on every backend against a scalar f64 oracle of the correlation
//! (filter not flipped), for both border modes, at shapes 0×n, 1×1, 1×n,
//! n×1, 17×33, 257×129, around the 16×16 GPU tile, and one row wider than
//! 65,535 tiles (a folded 2-D dispatch); filters 1×1, 3×3, 5×3, 3×5, 7×7
//! (tiled GPU path) and 19×19, 31×31 (direct GPU path, past the staged halo).
//! Images larger than one GPU binding run in bands of rows (tested with
//! 64 KiB bindings); a row whose halo does not fit one is `TooLarge`.
//!
//! Bound: |got − exact| ≤ 2·(fh·fw + 1)·ε·Σ|w·x| + tiny, the error of
//! fh·fw sequential (fused or not) multiply-adds, with ε = 2^-23.

mod common;

use common::*;
use proptest::prelude::{ProptestConfig, any, proptest};
use tandem::kernels::{Border, Conv2d};
use tandem::{Backend, Buffer, Error};

/// Exact (f64) correlation, and Σ|w·x| per pixel for the error bound.
fn oracle(k: &Conv2d, img: &[f32], filter: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let (h, w) = (k.height as isize, k.width as isize);
    let (fh, fw) = (k.filter_height as isize, k.filter_width as isize);
    let px = |y: isize, x: isize| -> f64 {
        match k.border {
            Border::Zero => {
                if y < 0 || y >= h || x < 0 || x >= w {
                    0.0
                } else {
                    img[(y * w + x) as usize] as f64
                }
            }
            Border::Clamp => {
                let (y, x) = (y.clamp(0, h - 1), x.clamp(0, w - 1));
                img[(y * w + x) as usize] as f64
            }
        }
    };
    let mut out = Vec::with_capacity((h * w) as usize);
    let mut mag = Vec::with_capacity((h * w) as usize);
    for y in 0..h {
        for x in 0..w {
            let (mut s, mut m) = (0.0f64, 0.0f64);
            for i in 0..fh {
                for j in 0..fw {
                    let t =
                        filter[(i * fw + j) as usize] as f64 * px(y + i - fh / 2, x + j - fw / 2);
                    s += t;
                    m += t.abs();
                }
            }
            out.push(s);
            mag.push(m);
        }
    }
    (out, mag)
}

fn check(what: &str, k: &Conv2d, got: &[f32], want: &[f64], mag: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let taps = (k.filter_height * k.filter_width) as f64;
    let eps = f32::EPSILON as f64;
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let bound = 2.0 * (taps + 1.0) * eps * m + 1e-30;
        assert!(
            (g as f64 - w).abs() <= bound,
            "{what}: pixel {i} (row {}, col {}): got {g:e}, want {w:e}, bound {bound:e}",
            i / k.width.max(1),
            i % k.width.max(1)
        );
    }
}

/// Runs `k` on every backend with random data in [-1, 1) and checks it.
fn run_case(k: Conv2d, seed: u64) {
    let mut rng = Rng::new(seed);
    let img = rng.f32s(k.height * k.width, -1.0, 1.0);
    let filter = rng.f32s(k.filter_height * k.filter_width, -1.0, 1.0);
    let (want, mag) = oracle(&k, &img, &filter);
    let (ib, fb) = (Buffer::from(img), Buffer::from(filter));
    for (b, e) in backends() {
        let got = e.run(&k, (&ib, &fb)).unwrap().to_vec().unwrap();
        check(&format!("{b:?} {k:?}"), &k, &got, &want, &mag);
    }
}

const SHAPES: &[(usize, usize)] = &[
    (0, 7),
    (7, 0),
    (1, 1),
    (1, 45),
    (45, 1),
    (17, 33),
    (15, 17),
    (16, 16),
    (17, 15),
    (33, 31),
    (257, 129),
];

const FILTERS: &[(usize, usize)] = &[(1, 1), (3, 3), (5, 3), (3, 5), (7, 7)];

#[test]
fn conv2d_matches_f64_oracle_for_every_shape_filter_and_border() {
    let mut seed = 1;
    for &(h, w) in SHAPES {
        for &(fh, fw) in FILTERS {
            for border in [Border::Zero, Border::Clamp] {
                seed += 1;
                run_case(Conv2d::new((h, w), (fh, fw), border), seed);
            }
        }
    }
}

#[test]
fn conv2d_big_filters_take_the_gpu_direct_path_and_match() {
    // 17x17 is the largest staged filter; 19x19 and 31x31 read global memory.
    for (fh, fw, h, w) in [
        (17, 17, 40, 37),
        (19, 19, 33, 35),
        (31, 31, 65, 70),
        (31, 3, 20, 50),
    ] {
        for border in [Border::Zero, Border::Clamp] {
            run_case(
                Conv2d::new((h, w), (fh, fw), border),
                (fh * 1000 + w) as u64,
            );
        }
    }
}

#[test]
fn conv2d_filter_larger_than_the_image_reads_the_border_everywhere() {
    for border in [Border::Zero, Border::Clamp] {
        run_case(Conv2d::new((3, 2), (9, 7), border), 99);
    }
}

#[test]
fn conv2d_row_wider_than_65535_gpu_tiles_folds_the_dispatch() {
    // 1 x 1,050,000 pixels: 65,625 tiles of 16x16 in one dimension.
    run_case(Conv2d::new((1, 1_050_000), (3, 3), Border::Clamp), 7);
}

#[test]
fn conv2d_is_correlation_not_flipped_convolution() {
    // An impulse at (2, 2) of a 5x5 image, filter 1..9: correlation puts the
    // filter *reversed* around the impulse (out[2-i+1][2-j+1] = f[i][j]).
    let mut img = vec![0.0f32; 25];
    img[12] = 1.0;
    let filter: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let k = Conv2d::new((5, 5), (3, 3), Border::Zero);
    let (ib, fb) = (Buffer::from(img), Buffer::from(filter));
    for (b, e) in backends() {
        let out = e.run(&k, (&ib, &fb)).unwrap().to_vec().unwrap();
        // out[1][1] sees the impulse through tap (2, 2) = 9; out[3][3] through tap (0, 0) = 1.
        assert_eq!(out[6], 9.0, "{b:?}");
        assert_eq!(out[18], 1.0, "{b:?}");
        assert_eq!(out[7], 8.0, "{b:?}");
        assert_eq!(out[12], 5.0, "{b:?}");
    }
}

#[test]
fn conv2d_clamp_of_a_constant_image_is_the_filter_sum_everywhere() {
    let k = Conv2d::new((9, 11), (5, 3), Border::Clamp);
    let (ib, fb) = (
        Buffer::from(vec![2.0f32; 99]),
        Buffer::from(vec![0.5f32; 15]),
    );
    for (b, e) in backends() {
        let out = e.run(&k, (&ib, &fb)).unwrap().to_vec().unwrap();
        assert!(out.iter().all(|&v| v == 15.0), "{b:?}: {out:?}");
    }
}

#[test]
fn conv2d_nan_and_inf_propagate_to_exactly_the_windows_that_hold_them() {
    let (h, w) = (20usize, 24usize);
    let mut img = vec![1.0f32; h * w];
    img[5 * w + 5] = f32::NAN;
    img[12 * w + 15] = f32::INFINITY;
    let k = Conv2d::new((h, w), (3, 5), Border::Zero);
    let filter = vec![0.25f32; 15];
    let (ib, fb) = (Buffer::from(img), Buffer::from(filter));
    for (b, e) in backends() {
        let out = e.run(&k, (&ib, &fb)).unwrap().to_vec().unwrap();
        for y in 0..h {
            for x in 0..w {
                let v = out[y * w + x];
                let near = |cy: usize, cx: usize| y.abs_diff(cy) <= 1 && x.abs_diff(cx) <= 2;
                if near(5, 5) {
                    assert!(v.is_nan(), "{b:?} ({y},{x}): {v}");
                } else if near(12, 15) {
                    assert_eq!(v, f32::INFINITY, "{b:?} ({y},{x})");
                } else {
                    assert!(v.is_finite(), "{b:?} ({y},{x}): {v}");
                }
            }
        }
    }
}

#[test]
fn conv2d_nan_weight_makes_every_output_nan_even_over_the_zero_border() {
    let k = Conv2d::new((6, 7), (3, 3), Border::Zero);
    let mut filter = vec![1.0f32; 9];
    filter[0] = f32::NAN;
    let (ib, fb) = (Buffer::from(vec![1.0f32; 42]), Buffer::from(filter));
    for (b, e) in backends() {
        let out = e.run(&k, (&ib, &fb)).unwrap().to_vec().unwrap();
        assert!(out.iter().all(|v| v.is_nan()), "{b:?}: {out:?}");
    }
}

fn expect_invalid(r: tandem::Result<Buffer<f32>>, needles: &[&str]) {
    match r {
        Err(Error::InvalidArgument { kernel, message }) => {
            assert_eq!(kernel, "conv2d");
            for n in needles {
                assert!(message.contains(n), "{message:?} lacks {n:?}");
            }
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn conv2d_rejects_even_zero_and_mismatched_sizes_naming_them() {
    let img = Buffer::from(vec![0.0f32; 12]);
    let f9 = Buffer::from(vec![0.0f32; 9]);
    let f6 = Buffer::from(vec![0.0f32; 6]);
    let f0 = Buffer::from(Vec::<f32>::new());
    let k = |h, w, fh, fw| Conv2d::new((h, w), (fh, fw), Border::Zero);
    for (b, e) in backends() {
        eprintln!("{b:?}");
        expect_invalid(e.run(&k(3, 4, 2, 3), (&img, &f6)), &["2x3", "odd"]);
        expect_invalid(e.run(&k(3, 4, 3, 2), (&img, &f6)), &["3x2", "odd"]);
        expect_invalid(e.run(&k(3, 4, 0, 3), (&img, &f0)), &["0x3"]);
        expect_invalid(e.run(&k(3, 4, 0, 0), (&img, &f0)), &["0x0"]);
        expect_invalid(e.run(&k(3, 5, 3, 3), (&img, &f9)), &["12", "15", "3x5"]);
        expect_invalid(e.run(&k(3, 4, 3, 3), (&img, &f6)), &["6", "9"]);
        expect_invalid(e.run(&k(usize::MAX, 2, 3, 3), (&img, &f9)), &["overflow"]);
        // An empty image still checks the filter.
        let empty = Buffer::from(Vec::<f32>::new());
        expect_invalid(e.run(&k(0, 4, 4, 3), (&empty, &f6)), &["4x3"]);
    }
}

#[test]
fn conv2d_empty_image_dispatches_nothing() {
    let Some(e) = own_gpu_engine() else { return };
    let empty = Buffer::from(Vec::<f32>::new());
    let f = Buffer::from(vec![1.0f32; 9]);
    let before = e.stats();
    for (h, w) in [(0, 5), (5, 0), (0, 0)] {
        let k = Conv2d::new((h, w), (3, 3), Border::Clamp);
        assert!(e.run(&k, (&empty, &f)).unwrap().is_empty());
    }
    assert_eq!(e.stats().since(&before).gpu_dispatches, 0);
}

#[test]
fn conv2d_image_beyond_the_binding_limit_runs_in_bands_on_the_gpu() {
    let Some(e) = common::small_binding_engine() else {
        return;
    };
    let gpu = e.on(Backend::Gpu);
    // 16,384 f32 per binding. Bands of whole tiles, ragged last bands,
    // windows at unaligned starts, a filter taller than a band (one row per
    // band for 5000-wide rows), and the direct path (19×19) past the staged
    // halo; both borders, so clamping reads the whole image's edges.
    let cases = [
        ((257, 129), (3, 3)),
        ((1000, 40), (5, 5)),
        ((30, 5000), (3, 3)),
        ((23, 4000), (3, 5)),
        ((300, 60), (19, 19)),
        ((100, 200), (7, 1)),
    ];
    for (i, &((h, w), (fh, fw))) in cases.iter().enumerate() {
        for border in [Border::Zero, Border::Clamp] {
            let k = Conv2d::new((h, w), (fh, fw), border);
            let mut rng = Rng::new(50 + i as u64);
            let img = rng.f32s(h * w, -1.0, 1.0);
            let filter = rng.f32s(fh * fw, -1.0, 1.0);
            let (want, mag) = oracle(&k, &img, &filter);
            let (ib, fb) = (Buffer::from(img), Buffer::from(filter));
            let before = gpu.stats();
            let got = gpu
                .run(&k, (&ib, &fb))
                .unwrap_or_else(|err| panic!("{k:?}: {err}"))
                .to_vec()
                .unwrap();
            check(&format!("banded {k:?}"), &k, &got, &want, &mag);
            let dispatches = gpu.stats().since(&before).gpu_dispatches;
            assert!(dispatches > 1, "{k:?}: {dispatches} dispatches");
        }
    }
}

#[test]
fn conv2d_row_and_halo_beyond_one_binding_is_too_large_on_gpu_and_auto_uses_cpu() {
    let Some(e) = common::small_binding_engine() else {
        return;
    };
    // Three 6,000-pixel rows (one output row and its 3×3 halo) are more
    // than 16,384 f32.
    let k = Conv2d::new((4, 6000), (3, 3), Border::Zero);
    let mut rng = Rng::new(5);
    let img = rng.f32s(4 * 6000, -1.0, 1.0);
    let filter = rng.f32s(9, -1.0, 1.0);
    let (ib, fb) = (Buffer::from(img.clone()), Buffer::from(filter.clone()));
    match e.on(Backend::Gpu).run(&k, (&ib, &fb)) {
        Err(Error::TooLarge { kernel, what, .. }) => {
            assert_eq!(kernel, "conv2d");
            assert!(what.contains("halo"), "{what}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let (want, mag) = oracle(&k, &img, &filter);
    let got = e.run(&k, (&ib, &fb)).unwrap().to_vec().unwrap();
    check("auto past the binding limit", &k, &got, &want, &mag);
}

#[test]
fn conv2d_work_counts_flops_and_bytes() {
    use tandem::Kernel;
    let k = Conv2d::new((10, 20), (5, 3), Border::Zero);
    let (ib, fb) = (
        Buffer::from(vec![0.0f32; 200]),
        Buffer::from(vec![0.0f32; 15]),
    );
    let work = k.work(&(&ib, &fb));
    assert_eq!(work.flops, 2 * 200 * 15);
    assert_eq!(work.bytes_read, (200 + 15) * 4);
    assert_eq!(work.bytes_written, 200 * 4);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_gpu_equals_cpu_equals_oracle(
        h in 0usize..40, w in 0usize..40, fh in 0usize..6, fw in 0usize..6,
        clamp in any::<bool>(), seed in any::<u64>(),
    ) {
        let k = Conv2d::new((h, w), (2 * fh + 1, 2 * fw + 1), if clamp { Border::Clamp } else { Border::Zero });
        run_case(k, seed);
    }
}
