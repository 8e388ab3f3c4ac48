//! The engine around the kernels: where data lives and what moves, the
//! dispatcher's decisions, errors for bad input, and sharing across threads.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tandem::dispatch::{BackendCost, Transfers};
use tandem::kernels::{ArgMax, Axpy, Binary, Dot, Min, Sum, Unary};

use tandem::{Backend, Buffer, CostModel, Engine, Error, Residency, Work};

// ---------- buffers and transfers ----------

#[test]
fn gpu_chain_uploads_each_input_once_and_downloads_only_the_scalar() {
    let Some(gpu) = own_gpu_engine() else { return };
    let n = 1 << 20;
    let x = Buffer::from(Rng::new(1).f32s(n, 0.0, 1.0));
    let y = Buffer::from(Rng::new(2).f32s(n, 0.0, 1.0));
    let before = gpu.stats();
    let z = gpu.run(&Axpy { a: 2.0 }, (&x, &y)).unwrap();
    let r = gpu.run(&Unary::Sqrt, &z).unwrap();
    let s: f32 = gpu.run(&Sum, &r).unwrap();
    // The same chain again: inputs are now resident, nothing moves up.
    let z2 = gpu.run(&Axpy { a: 2.0 }, (&x, &y)).unwrap();
    let s2: f32 = gpu.run(&Sum, &gpu.run(&Unary::Sqrt, &z2).unwrap()).unwrap();
    let moved = gpu.stats().since(&before);
    assert_eq!(moved.uploads, 2, "{moved:?}");
    assert_eq!(moved.bytes_uploaded, 2 * 4 * n as u64, "{moved:?}");
    assert_eq!(moved.downloads, 2, "{moved:?}");
    assert_eq!(moved.bytes_downloaded, 2 * 4, "{moved:?}");
    assert_eq!(moved.gpu_runs, 6);
    assert_eq!(s, s2);
    assert_eq!(z.residency(), Residency::Device);
    assert_eq!(x.residency(), Residency::Both);
    // And the answer is right.
    let (xs, ys) = (x.to_vec().unwrap(), y.to_vec().unwrap());
    let exact: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(&a, &b)| (2.0 * a as f64 + b as f64).sqrt())
        .sum();
    assert!((s as f64 - exact).abs() < 1e-4 * exact, "{s} vs {exact}");
}

#[test]
fn gpu_output_downloads_once_then_reads_from_host() {
    let Some(gpu) = own_gpu_engine() else { return };
    let x = Buffer::from(vec![1.5f32; 1000]);
    let out = gpu.run(&Unary::Neg, &x).unwrap();
    assert_eq!(out.residency(), Residency::Device);
    let before = gpu.stats();
    assert_eq!(out.to_vec().unwrap(), vec![-1.5f32; 1000]);
    assert_eq!(out.residency(), Residency::Both);
    assert_eq!(out.to_vec().unwrap(), vec![-1.5f32; 1000]);
    let moved = gpu.stats().since(&before);
    assert_eq!((moved.downloads, moved.bytes_downloaded), (1, 4000));
    // A clone shares the data and the residency.
    assert_eq!(out.clone().residency(), Residency::Both);
}

#[test]
fn write_replaces_host_copy_and_drops_the_stale_device_copy() {
    let Some(gpu) = own_gpu_engine() else { return };
    let x = Buffer::from(vec![1i32; 300]);
    assert_eq!(gpu.run(&Sum, &x).unwrap(), 300);
    assert_eq!(x.residency(), Residency::Both);
    x.write(&[2i32; 300]).unwrap();
    assert_eq!(x.residency(), Residency::Host);
    let before = gpu.stats();
    assert_eq!(gpu.run(&Sum, &x).unwrap(), 600, "stale device copy used");
    assert_eq!(gpu.stats().since(&before).bytes_uploaded, 1200);
    assert!(matches!(
        x.write(&[1, 2, 3]),
        Err(Error::LengthMismatch {
            left: 300,
            right: 3,
            ..
        })
    ));
}

#[test]
fn cpu_reads_gpu_outputs_and_gpu_reads_cpu_outputs() {
    let Some(gpu) = on(Backend::Gpu) else { return };
    let cpu = engine().on(Backend::Cpu);
    let x = Buffer::from((0..5000).map(|i| i as f32).collect::<Vec<_>>());
    let on_gpu = gpu.run(&Unary::Scale(2.0), &x).unwrap();
    let on_cpu = cpu.run(&Unary::Neg, &on_gpu).unwrap();
    assert_eq!(on_cpu.residency(), Residency::Host);
    assert_eq!(gpu.run(&ArgMax, &on_cpu).unwrap(), Some((0, -0.0)));
    assert_eq!(cpu.run(&Min, &on_gpu).unwrap(), Some(0.0));
}

#[test]
fn repeated_calls_reuse_pooled_device_memory() {
    let Some(gpu_only) = own_gpu_engine() else {
        return;
    };
    let x = Buffer::from(vec![1.0f32; 1 << 18]);
    let step = || {
        let y = gpu_only.run(&Unary::Exp, &x).unwrap();
        let _: f32 = gpu_only.run(&Sum, &y).unwrap();
    };
    for _ in 0..3 {
        step();
    }
    let warm = gpu_only.stats();
    for _ in 0..100 {
        step();
    }
    let after = gpu_only.stats();
    let total = |s: &tandem::Stats| s.device_bytes_live + s.device_bytes_pooled;
    assert_eq!(
        total(&after),
        total(&warm),
        "device memory grew: {warm:?} -> {after:?}"
    );
}

// ---------- the dispatcher ----------

fn model(cpu_bw: f64, gpu_bw: f64, link: f64) -> CostModel {
    let mut m = CostModel::defaults(2, None);
    m.cpu = BackendCost {
        latency_s: 20e-6,
        bytes_per_s: cpu_bw,
        flops_per_s: 1e11,
    };
    m.cpu_serial = m.cpu;
    m.gpu = BackendCost {
        latency_s: 50e-6,
        bytes_per_s: gpu_bw,
        flops_per_s: 1e13,
    };
    m.upload_bytes_per_s = link;
    m.download_bytes_per_s = link;
    m.transfer_latency_s = 30e-6;
    m.source = "test".into();
    m
}

fn decide(m: &CostModel, work: &Work, moves: Transfers) -> Backend {
    let cpu = m.estimate(Backend::Cpu, work, &moves);
    let gpu = m.estimate(Backend::Gpu, work, &moves);
    CostModel::choose(&cpu, Some(&gpu))
}

#[test]
fn fast_gpu_model_sends_big_resident_work_to_gpu_and_tiny_host_work_to_cpu() {
    let m = model(10e9, 1000e9, 10e9);
    let big = Work::elementwise::<f32>(1 << 24, 2, 2);
    assert_eq!(decide(&m, &big, Transfers::default()), Backend::Gpu);
    let tiny = Work::elementwise::<f32>(100, 2, 2);
    let host = Transfers {
        to_gpu: 800,
        to_cpu: 0,
    };
    assert_eq!(decide(&m, &tiny, host), Backend::Cpu);
}

/// The bytes a call would move: `to_gpu` up, `to_cpu` back.
fn moved(to_gpu: u64, to_cpu: u64) -> Transfers {
    Transfers { to_gpu, to_cpu }
}

#[test]
fn slow_gpu_model_keeps_everything_on_cpu() {
    let m = model(10e9, 2e9, 4e9);
    for n in [1usize, 1000, 1 << 16, 1 << 24, 1 << 28] {
        let w = Work::elementwise::<f32>(n, 2, 2);
        let bytes = (8 * n) as u64;
        assert_eq!(
            decide(&m, &w, Transfers::default()),
            Backend::Cpu,
            "n={n} resident"
        );
        assert_eq!(decide(&m, &w, moved(bytes, 0)), Backend::Cpu, "n={n} host");
    }
}

#[test]
fn residency_changes_the_decision() {
    // A one-pass kernel: not worth uploading for, worth running where the data is.
    let m = model(20e9, 1000e9, 10e9);
    let n = 1 << 22;
    let w = Work::elementwise::<f32>(n, 1, 1);
    let bytes = (4 * n) as u64;
    assert_eq!(decide(&m, &w, moved(bytes, 0)), Backend::Cpu);
    assert_eq!(decide(&m, &w, moved(0, bytes)), Backend::Gpu);
}

#[test]
fn engine_decisions_follow_residency_with_a_fast_gpu_model() {
    if on(Backend::Gpu).is_none() {
        return;
    }
    let engine = Engine::builder()
        .cost_model(model(20e9, 1000e9, 10e9))
        .build()
        .unwrap();
    let x = Buffer::from(vec![1.0f32; 1 << 22]);
    assert_eq!(engine.choose(&Unary::Neg, &x), Backend::Cpu);
    engine.gpu().unwrap().resident("test", &x).unwrap();
    assert_eq!(engine.choose(&Unary::Neg, &x), Backend::Gpu);
    let tiny = Buffer::from(vec![1.0f32; 10]);
    assert_eq!(engine.choose(&Sum, &tiny), Backend::Cpu);
    let out = engine.run(&Unary::Neg, &x).unwrap();
    assert_eq!(
        out.residency(),
        Residency::Device,
        "Auto should have run on the GPU"
    );
    let report = engine.explain(&Unary::Neg, &x).to_string();
    assert!(
        report.contains("gpu:") && report.contains("cpu:") && report.contains("-> gpu"),
        "{report}"
    );
}

#[test]
fn explain_and_info_describe_both_backends() {
    let e = engine();
    let x = Buffer::from(vec![1u32; 4096]);
    let ex = e.explain(&Sum, &x);
    assert_eq!(ex.kernel, "sum");
    assert_eq!(ex.work.elements, 4096);
    let text = ex.to_string();
    assert!(text.contains("cpu:") && text.contains("gpu"), "{text}");
    let info = e.info().to_string();
    assert!(info.contains("threads") && info.contains("SIMD"), "{info}");
    if e.has_gpu() {
        assert!(info.contains(&e.gpu().unwrap().info().name), "{info}");
    } else {
        assert!(info.contains("gpu: none"), "{info}");
    }
    let forced = e.on(Backend::Cpu).explain(&Sum, &x);
    assert_eq!(
        (forced.chosen, forced.forced),
        (Backend::Cpu, Some(Backend::Cpu))
    );
}

#[test]
fn forcing_the_cpu_runs_on_the_cpu() {
    let e = Engine::builder().build().unwrap();
    let x = Buffer::from(vec![3i32; 1 << 20]);
    let before = e.stats();
    assert_eq!(e.on(Backend::Cpu).run(&Sum, &x).unwrap(), 3 << 20);
    let d = e.stats().since(&before);
    assert_eq!((d.cpu_runs, d.gpu_runs, d.bytes_uploaded), (1, 0, 0));
}

// ---------- errors ----------

#[test]
fn mismatched_lengths_are_errors_naming_kernel_and_sizes() {
    let a = Buffer::from(vec![1.0f32; 10]);
    let b = Buffer::from(vec![1.0f32; 11]);
    for (_, e) in backends()
        .into_iter()
        .chain([(Backend::Auto, engine().clone())])
    {
        let err = e.run(&Binary::Add, (&a, &b)).unwrap_err();
        assert_eq!(
            err,
            Error::LengthMismatch {
                kernel: "add",
                left: 10,
                right: 11
            }
        );
        assert!(
            err.to_string().contains("add") && err.to_string().contains("10 vs 11"),
            "{err}"
        );
        assert!(matches!(
            e.run(&Axpy { a: 1.0 }, (&a, &b)),
            Err(Error::LengthMismatch { kernel: "axpy", .. })
        ));
        assert!(matches!(
            e.run(&Dot, (&a, &b)),
            Err(Error::LengthMismatch { kernel: "dot", .. })
        ));
    }
}

#[test]
fn forcing_a_missing_gpu_says_how_to_get_one() {
    let e = Engine::builder().gpu(false).build().unwrap();
    assert!(!e.has_gpu());
    let x = Buffer::from(vec![1.0f32; 8]);
    let err = e.on(Backend::Gpu).run(&Sum, &x).unwrap_err();
    assert!(matches!(err, Error::NoGpu { kernel: "sum", .. }), "{err:?}");
    assert!(err.to_string().contains("mesa-vulkan-drivers"), "{err}");
    // Auto still works, on the CPU.
    assert_eq!(e.run(&Sum, &x).unwrap(), 8.0);
    assert!(e.info().to_string().contains("gpu: none"));
}

#[test]
fn unsupported_type_op_pairs_are_errors_on_every_backend() {
    let ints = Buffer::from(vec![4i32; 16]);
    let uints = Buffer::from(vec![4u32; 16]);
    for (b, e) in backends()
        .into_iter()
        .chain([(Backend::Auto, engine().clone())])
    {
        let err = e.run(&Unary::Sqrt, &ints).unwrap_err();
        assert!(
            matches!(err, Error::Unsupported { kernel: "sqrt", .. }),
            "{b}: {err:?}"
        );
        assert!(err.to_string().contains("i32"), "{err}");
        assert!(matches!(
            e.run(&Unary::Neg, &uints),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            e.run(&Unary::Scale(2.0), &uints),
            Err(Error::Unsupported { .. })
        ));
    }
}

#[test]
fn empty_inputs_give_identities_without_dispatch() {
    for (b, e) in backends() {
        let before = e.stats();
        let empty = Buffer::from(Vec::<f32>::new());
        assert_eq!(e.run(&Sum, &empty).unwrap(), 0.0);
        assert_eq!(e.run(&Dot, (&empty, &empty)).unwrap(), 0.0);
        assert_eq!(e.run(&Min, &empty).unwrap(), None);
        assert_eq!(e.run(&ArgMax, &empty).unwrap(), None);
        assert!(
            e.run(&Unary::Exp, &empty)
                .unwrap()
                .to_vec()
                .unwrap()
                .is_empty()
        );
        assert!(
            e.run(&Axpy { a: 1.0 }, (&empty, &empty))
                .unwrap()
                .is_empty()
        );
        let d = e.stats().since(&before);
        assert_eq!(
            (d.gpu_dispatches, d.bytes_uploaded, d.bytes_downloaded),
            (0, 0, 0),
            "{b}"
        );
    }
}

// ---------- threads ----------

#[test]
fn one_engine_serves_many_threads() {
    let e = engine().clone();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let e = e.clone();
            s.spawn(move || {
                let mut rng = Rng::new(t);
                for i in 0..20 {
                    let n = 1 + (rng.next_u32() % 50_000) as usize;
                    let x = rng.small_i32s(n, 1000);
                    let xb = Buffer::from(x.clone());
                    let backend = [Backend::Cpu, Backend::Gpu, Backend::Auto][i % 3];
                    if backend == Backend::Gpu && !e.has_gpu() {
                        continue;
                    }
                    let h = e.on(backend);
                    let want = x.iter().fold(0i32, |a, &v| a.wrapping_add(v));
                    assert_eq!(h.run(&Sum, &xb).unwrap(), want);
                    let y = h.run(&Binary::Mul, (&xb, &xb)).unwrap().to_vec().unwrap();
                    assert!(y.iter().zip(&x).all(|(a, b)| *a == b.wrapping_mul(*b)));
                }
            });
        }
    });
}

#[test]
fn borrowed_memory_is_read_in_place_on_every_backend_and_never_written() {
    use std::sync::Arc;
    let data: Arc<[f32]> = Arc::from((0..1000).map(|i| i as f32).collect::<Vec<f32>>());
    let b = Buffer::from_shared(Arc::clone(&data));
    assert_eq!(b.host().unwrap().as_ptr(), data.as_ptr(), "no copy");
    for (backend, engine) in common::backends() {
        let s: f32 = engine.run(&tandem::kernels::Sum, &b).unwrap();
        assert_eq!(s, 499_500.0, "{backend}");
    }
    // A write replaces the host copy with an owned one: the shared memory
    // is unchanged, and the buffer reads the new contents.
    b.write(&vec![1.0; 1000]).unwrap();
    assert_eq!(data[3], 3.0);
    assert_eq!(b.to_vec().unwrap()[3], 1.0);
    drop(b);
    assert_eq!(
        Arc::strong_count(&data),
        1,
        "the buffer let go of its owner"
    );
}

// ---------- device-side timings ----------

#[test]
fn device_timings_sum_each_pass_and_stay_within_the_wall_time() {
    let Some(e) = own_gpu_engine() else { return };
    let gpu = e.gpu().expect("a GPU engine");
    if !gpu.info().features.timestamps {
        assert!(gpu.set_timing(true).is_err());
        return;
    }
    // Off: nothing is recorded.
    assert_eq!(gpu.take_device_time("test").unwrap(), None);
    let x = Buffer::from(vec![1.0f32; 1 << 20]);
    let y = Buffer::from(vec![2.0f32; 1 << 20]);
    gpu.set_timing(true).unwrap();
    // Resident inputs, so the call is the kernels and one small readback.
    let z = e.run(&Axpy { a: 3.0 }, (&x, &y)).unwrap();
    gpu.wait("test").unwrap();
    // The axpy ran as one timed pass (uploads are not passes).
    assert!(gpu.take_device_time("test").unwrap().unwrap() > Duration::ZERO);
    let start = Instant::now();
    let s: f32 = e.run(&Sum, &z).unwrap();
    let wall = start.elapsed();
    assert_eq!(s, 5.0 * (1 << 20) as f32);
    let device = gpu.take_device_time("test").unwrap().expect("timing is on");
    assert!(device > Duration::ZERO, "{device:?}");
    assert!(device <= wall, "device {device:?} > wall {wall:?}");
    // Taken: the next take starts from zero.
    assert_eq!(gpu.take_device_time("test").unwrap(), Some(Duration::ZERO));
    // Timing makes no buffer per call (the query set's buffer was made
    // when it was turned on): steady state after the warm calls above.
    let created = gpu.resource_counts();
    for _ in 0..20 {
        let _: f32 = e.run(&Sum, &z).unwrap();
    }
    assert_eq!(
        gpu.resource_counts().buffers_created,
        created.buffers_created
    );
    assert!(gpu.take_device_time("test").unwrap().unwrap() > Duration::ZERO);
    // More passes than the query set holds: no partial sum.
    for _ in 0..300 {
        let _: f32 = e.run(&Sum, &z).unwrap();
    }
    assert_eq!(gpu.take_device_time("test").unwrap(), None);
    gpu.set_timing(false).unwrap();
    let _: f32 = e.run(&Sum, &z).unwrap();
    assert_eq!(gpu.take_device_time("test").unwrap(), None);
}

#[test]
fn device_timings_with_timestamps_masked_are_unsupported() {
    if on(Backend::Gpu).is_none() {
        return;
    }
    let e = Engine::builder()
        .gpu_features(tandem::gpu::GpuFeatures::ALL.with_timestamps(false))
        .build()
        .unwrap();
    let gpu = e.gpu().expect("a GPU");
    assert!(!gpu.info().features.timestamps);
    let err = gpu.set_timing(true).unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { ref reason, .. } if reason.contains("TIMESTAMP_QUERY")),
        "{err}"
    );
    assert_eq!(gpu.take_device_time("test").unwrap(), None);
}
