//! The README's promises, each checked where it could break: backends
//! compared bit for bit on inputs where rounding order matters, NaNs an
//! operation creates, parameter-sized allocations at their edge, error text,
//! and the builder's timeout. Each test here would have caught one of the
//! defects reported against 00b95fa.

mod common;

use std::time::Duration;

use common::{Rng, backends, on};
use tandem::kernels::{Axpy, Binary, Gemm, Histogram, HistogramRange, Scan, Unary};
use tandem::{Backend, Buffer, Engine, Error};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `n` triples `(a, x, y)` with `y ≈ -a·x`, so `a·x + y` cancels and the
/// fused and unfused results differ in most elements. Every value and every
/// result stays normal (a GPU may flush subnormals).
fn cancelling(n: usize, seed: u64) -> (f32, Vec<f32>, Vec<f32>) {
    let mut r = Rng::new(seed);
    let a = 1.618_034_f32;
    let x = r.f32s(n, 1.0, 2.0);
    let y = x
        .iter()
        .map(|&x| -(a * x) * (1.0 + r.f32(-1e-6, 1e-6)))
        .collect();
    (a, x, y)
}

#[test]
fn axpy_is_fused_on_an_fma_cpu_and_fused_or_unfused_per_element_on_the_gpu() {
    let n = 200_003;
    let (a, x, y) = cancelling(n, 17);
    let fused: Vec<f32> = x.iter().zip(&y).map(|(&x, &y)| a.mul_add(x, y)).collect();
    let unfused: Vec<f32> = x.iter().zip(&y).map(|(&x, &y)| a * x + y).collect();
    let differ = fused
        .iter()
        .zip(&unfused)
        .filter(|(f, u)| f.to_bits() != u.to_bits())
        .count();
    assert!(
        differ > n / 10,
        "the inputs must tell fused from unfused ({differ} of {n} differ)"
    );
    let (xb, yb) = (Buffer::from(x), Buffer::from(y));
    let cpu = on(Backend::Cpu).unwrap();
    let got = cpu.run(&Axpy { a }, (&xb, &yb)).unwrap().to_vec().unwrap();
    if tandem::cpu::simd::compiled_level().has_fma() {
        assert_eq!(bits(&got), bits(&fused), "CPU axpy must be one rounding");
    } else {
        assert_eq!(
            bits(&got),
            bits(&unfused),
            "a build without FMA rounds twice"
        );
    }
    if let Some(gpu) = on(Backend::Gpu) {
        let got = gpu.run(&Axpy { a }, (&xb, &yb)).unwrap().to_vec().unwrap();
        for (i, g) in got.iter().enumerate() {
            assert!(
                g.to_bits() == fused[i].to_bits() || g.to_bits() == unfused[i].to_bits(),
                "GPU axpy[{i}] = {g:e} is neither fused {:e} nor unfused {:e}",
                fused[i],
                unfused[i]
            );
        }
    }
}

/// The map kernels the README calls bit-identical across backends, on
/// inputs where `x - y` cancels and `x * y` rounds.
#[test]
fn exact_map_kernels_are_bit_identical_across_backends() {
    let n = 99_991;
    let (_, x, y) = cancelling(n, 5);
    let y: Vec<f32> = y.into_iter().map(|v| -v / 1.618_034).collect();
    let (xb, yb) = (Buffer::from(x), Buffer::from(y));
    let mut results: Vec<Vec<Vec<u32>>> = Vec::new();
    for (_, e) in backends() {
        let mut r = Vec::new();
        for op in common::EXACT_BINARY {
            r.push(bits(&e.run(&op, (&xb, &yb)).unwrap().to_vec().unwrap()));
        }
        for op in [Unary::Neg, Unary::Abs, Unary::Scale(0.1)] {
            r.push(bits(&e.run(&op, &yb).unwrap().to_vec().unwrap()));
        }
        results.push(r);
    }
    if let [cpu, gpu] = &results[..] {
        for (k, (c, g)) in cpu.iter().zip(gpu).enumerate() {
            let diff = c.iter().zip(g).position(|(c, g)| c != g);
            assert_eq!(diff, None, "op #{k}: CPU and GPU differ");
        }
    }
}

#[test]
fn integer_scans_are_bit_identical_across_backends() {
    let mut r = Rng::new(3);
    let v: Vec<i32> = (0..300_007).map(|_| r.next_u32() as i32).collect();
    let vb = Buffer::from(v.clone());
    let mut want = Vec::with_capacity(v.len());
    let mut acc = 0i32;
    for &x in &v {
        acc = acc.wrapping_add(x);
        want.push(acc);
    }
    for (b, e) in backends() {
        let got = e
            .run(&Scan { exclusive: false }, &vb)
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(got, want, "{b:?}");
    }
}

/// Operations that create a NaN give a NaN on both backends; its sign and
/// payload are unspecified (x86 makes `0xffc00000`, lavapipe `0x7fc00000`).
#[test]
fn created_nans_are_nans_on_both_backends() {
    let neg = Buffer::from(vec![-1.0f32, -2.5, f32::NEG_INFINITY]);
    let zero = Buffer::from(vec![0.0f32; 3]);
    for (b, e) in backends() {
        for op in [Unary::Sqrt, Unary::Ln] {
            let got = e.run(&op, &neg).unwrap().to_vec().unwrap();
            assert!(got.iter().all(|v| v.is_nan()), "{b:?} {op:?}: {got:?}");
        }
        let got = e
            .run(&Binary::Div, (&zero, &zero))
            .unwrap()
            .to_vec()
            .unwrap();
        assert!(got.iter().all(|v| v.is_nan()), "{b:?} 0/0: {got:?}");
    }
}

#[test]
fn histogram_bins_past_the_bound_are_an_error_not_an_abort() {
    let x = Buffer::from(vec![1u32, 2, 3]);
    for (b, e) in backends() {
        for bins in [
            tandem::kernels::histogram::MAX_BINS + 1,
            u32::MAX - 3,
            u32::MAX,
        ] {
            let err = e.run(&Histogram { bins }, &x).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidArgument {
                        kernel: "histogram",
                        ..
                    }
                ),
                "{b:?} bins={bins}: {err}"
            );
            assert!(err.to_string().contains("MAX_BINS"), "{err}");
        }
    }
    // Many bins still work: past the private-counter limit, on the parallel
    // path (2^19 values), with the shared counters allocated fallibly.
    let bins = 1u32 << 20;
    assert!(bins as usize > tandem::kernels::histogram::CPU_PRIVATE_SLOTS);
    let big = Buffer::from((0..1u32 << 19).collect::<Vec<_>>());
    let h = on(Backend::Cpu)
        .unwrap()
        .run(&Histogram { bins }, &big)
        .unwrap();
    assert_eq!(h.counts.len(), bins as usize);
    assert!(h.counts[..1 << 19].iter().all(|&c| c == 1));
    assert!(h.counts[1 << 19..].iter().all(|&c| c == 0));
    assert_eq!(h.above, 0);
    let r = HistogramRange {
        lo: 0.0,
        hi: 1.0,
        bins: tandem::kernels::histogram::MAX_RANGE_BINS + 1,
    };
    let err = on(Backend::Cpu)
        .unwrap()
        .run(&r, &Buffer::from(vec![0.5f32]))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn a_gemm_output_sized_by_its_parameters_alone_fails_softly() {
    // k = 0: A and B are empty, the m×n output comes from m and n only.
    let empty = Buffer::from(Vec::<f32>::new());
    let cpu = on(Backend::Cpu).unwrap();
    // Both outputs are more bytes than any allocation may have (isize::MAX),
    // whatever the operating system's overcommit policy.
    for (m, n) in [(1usize << 30, 1usize << 31), (1 << 31, 1 << 31)] {
        let err = cpu.run(&Gemm::new(m, n, 0), (&empty, &empty)).unwrap_err();
        assert!(
            matches!(err, Error::HostOutOfMemory { kernel: "gemm", .. }),
            "{m}×{n}: {err}"
        );
    }
    // A small one still works, giving zeros.
    let c = cpu.run(&Gemm::new(3, 5, 0), (&empty, &empty)).unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![0.0; 15]);
}

#[test]
fn gemm_errors_name_the_product_that_overflowed_and_the_shape() {
    let a = Buffer::from(vec![0.0f32; 15]);
    let e = on(Backend::Cpu).unwrap();
    let err = e
        .run(&Gemm::new(usize::MAX / 2, 1, 3), (&a, &a))
        .unwrap_err()
        .to_string();
    assert!(err.contains("m·k overflows"), "{err}");
    let err = e
        .run(&Gemm::new(1, usize::MAX / 2, 3), (&a, &a))
        .unwrap_err()
        .to_string();
    assert!(err.contains("k·n overflows"), "{err}");
    let err = e
        .run(&Gemm::new(3, 4, 5), (&a, &a))
        .unwrap_err()
        .to_string();
    assert!(err.contains("(A 3×5, B 5×4)"), "{err}");
    let t = Gemm::new(3, 4, 5).transpose_a(true).transpose_b(true);
    let err = e.run(&t, (&a, &a)).unwrap_err().to_string();
    assert!(
        err.contains("(A transposed, 5×3, B transposed, 4×5)"),
        "{err}"
    );
}

/// One error of each kind, formatted: no doubled or stray spaces, no empty
/// parentheses, and `Debug` carries the whole `Display` message.
#[test]
fn every_error_message_reads_cleanly_and_debug_shows_it() {
    let samples = vec![
        Error::LengthMismatch {
            kernel: "add",
            left: 3,
            right: 4,
        },
        Error::InvalidArgument {
            kernel: "gemm",
            message: "A has 3 elements, expected m·k = 4".into(),
        },
        Error::Unsupported {
            kernel: "sqrt",
            backend: Backend::Gpu,
            reason: "sqrt is not defined for i32".into(),
        },
        Error::NoGpu {
            kernel: "sum",
            reason: "no adapter".into(),
        },
        Error::TooLarge {
            kernel: "sort",
            bytes: 10,
            limit: 5,
            what: "one storage binding",
        },
        Error::OutOfMemory {
            kernel: "sum",
            bytes: 8,
        },
        Error::HostOutOfMemory {
            kernel: "gemm",
            bytes: 8,
            what: "the m×n output",
        },
        Error::Gpu {
            kernel: "sum",
            message: "validation".into(),
        },
        Error::DeviceLost {
            kernel: "sum",
            reason: "destroyed".into(),
        },
        Error::Timeout {
            kernel: "sum",
            seconds: 1.0,
        },
        Error::ThreadPool("no threads".into()),
    ];
    // Real messages from the kernels too.
    let e = on(Backend::Cpu).unwrap();
    let a = Buffer::from(vec![0.0f32; 15]);
    let mut all: Vec<Error> = samples;
    all.push(e.run(&Gemm::new(3, 4, 5), (&a, &a)).unwrap_err());
    all.push(
        e.run(&Histogram { bins: 0 }, &Buffer::from(vec![1u32]))
            .unwrap_err(),
    );
    for err in &all {
        let text = err.to_string();
        for bad in ["  ", " ,", "( ", " )", "()", ",,", ". .", ": :"] {
            assert!(!text.contains(bad), "{:?} in {text:?}", bad);
        }
        assert_eq!(text.trim(), text, "{text:?}");
        let debug = format!("{err:?}");
        assert!(
            debug.contains(&text),
            "Debug {debug:?} lacks Display {text:?}"
        );
        assert!(debug.starts_with(err.variant()), "{debug}");
    }
    let no_gpu = format!("{:?}", all[3]);
    assert!(
        no_gpu.contains("apt-get install mesa-vulkan-drivers"),
        "{no_gpu}"
    );
}

#[test]
fn a_zero_gpu_timeout_is_rejected_by_the_builder() {
    let err = Engine::builder()
        .gpu_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                kernel: "engine",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("gpu_timeout"), "{err}");
    Engine::builder()
        .gpu_timeout(Duration::from_millis(1))
        .build()
        .unwrap();
}
