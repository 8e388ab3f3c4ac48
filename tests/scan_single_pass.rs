//! The GPU scan's single pass (decoupled look-back, `scan_lb`) and its
//! fallback, forced on whatever adapter runs the tests: by default the
//! single pass runs only on hardware adapters, so without this file CI's
//! lavapipe would never check it. One test, because it sets environment
//! variables that the library reads on every scan.

mod common;

use common::{Rng, SMALL_BINDING};
use tandem::kernels::Scan;
use tandem::kernels::scan::float_error_depth;
use tandem::{Backend, Buffer, Engine};

fn wrapping_oracle(x: &[u32], exclusive: bool) -> Vec<u32> {
    let mut acc = 0u32;
    x.iter()
        .map(|&v| {
            let before = acc;
            acc = acc.wrapping_add(v);
            if exclusive { before } else { acc }
        })
        .collect()
}

fn scan<T: tandem::Element>(e: &Engine, exclusive: bool, x: &[T]) -> Vec<T> {
    e.run(&Scan { exclusive }, &Buffer::from(x.to_vec()))
        .expect("scan")
        .to_vec()
        .expect("to host")
}

/// u32, i32 and f32 scans at each size on `e`, against the oracles.
fn check(e: &Engine, sizes: &[usize], what: &str) {
    let mut rng = Rng::new(11);
    for &n in sizes {
        for exclusive in [false, true] {
            let x = rng.u32s(n);
            let want = wrapping_oracle(&x, exclusive);
            assert!(
                scan(e, exclusive, &x) == want,
                "{what}: u32 n={n} exclusive={exclusive}"
            );
            let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
            let got: Vec<u32> = scan(e, exclusive, &xi).iter().map(|&v| v as u32).collect();
            assert!(got == want, "{what}: i32 n={n} exclusive={exclusive}");
            let xf = rng.f32s(n, -1.0, 1.0);
            let got = scan(e, exclusive, &xf);
            let (mut s, mut a) = (0.0f64, 0.0f64);
            let depth = float_error_depth(n);
            for (i, (&v, &g)) in xf.iter().zip(&got).enumerate() {
                let before = (s, a);
                s += f64::from(v);
                a += f64::from(v).abs();
                let (want, abs) = if exclusive { before } else { (s, a) };
                let bound = depth * f64::from(f32::EPSILON) / 2.0 * abs + 1e-30;
                assert!(
                    (f64::from(g) - want).abs() <= bound,
                    "{what}: f32 n={n} exclusive={exclusive} element {i}: got {g}, want {want}"
                );
            }
        }
    }
}

#[test]
fn single_pass_scan_and_its_fallback_match_the_oracles() {
    // Skips without a GPU (fails under TANDEM_REQUIRE_GPU=1).
    if common::own_gpu_engine().is_none() {
        return;
    }
    let has_subgroups = |e: &Engine| {
        let info = e.gpu().expect("gpu").info();
        info.features.subgroups && info.subgroup_sizes.0 >= 8
    };
    // SAFETY: this binary's only test sets these before it creates the
    // engines below, and nothing else in the process reads the environment
    // concurrently.
    unsafe { std::env::set_var("TANDEM_SCAN_PASSES", "1") };
    let e = Engine::builder().build().expect("engine").on(Backend::Gpu);
    if !has_subgroups(&e) {
        eprintln!("skipping: the single pass needs subgroups of 8 or more");
        return;
    }
    // Tiles are 2048 elements; the look-back walks across 1, 2 and many.
    let sizes = [1, 2047, 2048, 2049, 4096, 3 * 2048 + 5, 65_537, 1 << 20];
    check(&e, &sizes, "look-back");
    // Several chunks (dispatches): tiles look back across chunk bounds.
    let small = Engine::builder()
        .gpu_chunk_bytes(SMALL_BINDING)
        .build()
        .expect("engine")
        .on(Backend::Gpu);
    check(&small, &[16_385, 200_003], "look-back over 64 KiB bindings");
    // SPIN = 0: every look-back step reduces its predecessor's input
    // itself (quadratic in tiles, so small sizes only).
    // SAFETY: as above; the engines above are idle.
    unsafe { std::env::set_var("TANDEM_SCAN_SPIN", "0") };
    check(&e, &[2049, 5 * 2048 + 7, 40_001], "fallback");
    check(&small, &[40_001], "fallback over 64 KiB bindings");
}
