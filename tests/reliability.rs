//! Reliability: a lost device, impossible allocations, long runs and many
//! threads. Each test's name says what it proves; each fails rather than
//! hangs (watchdogs bound every wait).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use rayon::prelude::*;
use tandem::kernels::{
    ArgMax, ArgMin, Argsort, Axpy, Binary, Border, Compact, CompactIf, Compare, Conv2d, Dot, Gemm,
    Histogram, HistogramRange, Max, Min, Scan, Sort, SortPairs, Sum, Transpose, Unary,
};
use tandem::{Backend, Buffer, Cpu, Engine, Error, Gpu, Kernel, Residency, Work};

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `limit` (a deadlock fails CI instead of hanging it).
fn with_watchdog(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().expect("worker panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The worker panicked: surface its panic.
            if let Err(p) = handle.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no progress in {limit:?}: deadlock or hang")
        }
    }
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn a_destroyed_device_fails_gpu_calls_keeps_host_data_and_auto_falls_back_to_cpu() {
    let Some(gpu) = own_gpu_engine() else { return };
    let engine = gpu.on(Backend::Auto);
    let x = Buffer::from((0..10_000).map(|i| i as f32).collect::<Vec<_>>());
    let device_only = gpu.run(&Unary::Neg, &x).unwrap();
    let both = gpu.run(&Unary::Scale(2.0), &x).unwrap();
    both.to_vec().unwrap();
    assert_eq!(
        (device_only.residency(), both.residency()),
        (Residency::Device, Residency::Both)
    );

    engine.gpu().unwrap().device().destroy();

    let err = gpu.run(&Unary::Neg, &x).unwrap_err();
    assert!(
        matches!(err, Error::DeviceLost { kernel: "neg", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("destroyed"), "{err}");
    // The only copy was on the lost device: an error, never stale or zeroed data.
    assert!(matches!(
        device_only.to_vec(),
        Err(Error::DeviceLost { .. })
    ));
    assert!(matches!(
        engine.run(&Sum, &device_only),
        Err(Error::DeviceLost { .. })
    ));
    // Host copies stay readable, and Auto carries on on the CPU.
    assert_eq!(x.to_vec().unwrap()[9_999], 9_999.0);
    assert_eq!(both.to_vec().unwrap()[3], 6.0);
    assert!(!engine.has_gpu());
    assert_eq!(engine.choose(&Sum, &x), Backend::Cpu);
    assert_eq!(engine.run(&Sum, &x).unwrap(), 49_995_000.0);
    assert_eq!(engine.run(&ArgMax, &both).unwrap(), Some((9_999, 19_998.0)));
    assert!(
        engine.info().to_string().contains("destroyed"),
        "{}",
        engine.info()
    );
    assert!(matches!(gpu.run(&Sum, &x), Err(Error::DeviceLost { .. })));
}

#[test]
fn a_1_tib_device_allocation_is_an_error_naming_the_size_and_the_next_call_works() {
    let Some(gpu) = own_gpu_engine() else { return };
    let g = gpu.gpu().unwrap();
    let err = g.alloc_bytes("test", 1 << 40).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { bytes, .. } | Error::OutOfMemory { bytes, .. } if bytes == 1 << 40),
        "{err:?}"
    );
    assert!(err.to_string().contains("1099511627776"), "{err}");
    let x = Buffer::from(vec![2u32; 5000]);
    assert_eq!(gpu.run(&Sum, &x).unwrap(), 10_000);
}

#[test]
fn soak_10000_mixed_dispatches_keep_device_memory_resources_and_rss_bounded() {
    let Some(gpu) = own_gpu_engine() else { return };
    let sizes = [1usize, 100, 1000, 4097, 65_537, 200_000];
    let mut rng = Rng::new(7);
    let data: Vec<(Buffer<f32>, Buffer<f32>, Buffer<i32>)> = sizes
        .iter()
        .map(|&n| {
            (
                Buffer::from(rng.f32s(n, 0.5, 2.0)),
                Buffer::from(rng.f32s(n, 0.5, 2.0)),
                Buffer::from(rng.small_i32s(n, 1000)),
            )
        })
        .collect();
    let masks: Vec<Buffer<u32>> = sizes
        .iter()
        .map(|&n| Buffer::from(rng.u32s(n).iter().map(|v| v & 1).collect::<Vec<_>>()))
        .collect();
    let filter = Buffer::from(vec![0.25f32, 0.5, 0.25]);
    let step_map_reduce = |i: usize, x: &Buffer<f32>, y: &Buffer<f32>, k: &Buffer<i32>| {
        match i % 9 {
            0 => drop(gpu.run(&Unary::Exp, x).unwrap()),
            1 => drop(gpu.run(&Binary::Max, (x, y)).unwrap()),
            2 => drop(gpu.run(&Axpy { a: 0.5 }, (x, y)).unwrap()),
            3 => {
                let _ = gpu.run(&Sum, x).unwrap();
            }
            4 => {
                let _ = gpu.run(&Dot, (x, y)).unwrap();
            }
            5 => {
                let _ = gpu.run(&Min, k).unwrap();
            }
            6 => {
                let _ = gpu.run(&ArgMin, x).unwrap();
            }
            7 => drop(gpu.run(&Binary::Div, (k, k)).unwrap()),
            _ => {
                // A chain whose intermediate stays on the device.
                let z = gpu.run(&Binary::Mul, (x, y)).unwrap();
                let _ = gpu.run(&Max, &z).unwrap();
            }
        }
    };
    let step = |i: usize| {
        // Every kernel meets every size: the size turns once per 18 steps.
        let turn = i / 18;
        let (x, y, k) = &data[turn % data.len()];
        // The multi-pass families on the four smaller sizes only: a software
        // GPU sorts 2^16 keys in ~0.2 s.
        let small = turn % 4;
        let (xs, ys, ks) = &data[small];
        let (ms, n) = (&masks[small], sizes[small]);
        match i % 18 {
            9 => drop(gpu.run(&Scan::inclusive(), x).unwrap()),
            10 => drop(gpu.run(&Compact, (xs, ms)).unwrap()),
            11 => {
                let keep = CompactIf {
                    cmp: Compare::Lt,
                    threshold: 1.0f32,
                };
                drop(gpu.run(&keep, x).unwrap());
            }
            12 => {
                let _ = gpu.run(&Histogram { bins: 64 }, ms).unwrap();
                let range = HistogramRange {
                    lo: 0.5,
                    hi: 2.0,
                    bins: 100,
                };
                let _ = gpu.run(&range, x).unwrap();
            }
            13 => drop(gpu.run(&Sort, ks).unwrap()),
            14 => {
                drop(gpu.run(&SortPairs, (xs, ms)).unwrap());
                drop(gpu.run(&Argsort, xs).unwrap());
            }
            15 => drop(gpu.run(&Transpose { rows: 1, cols: n }, ys).unwrap()),
            16 => drop(gpu.run(&Gemm::new(1, 1, n), (xs, ys)).unwrap()),
            17 => {
                let conv = Conv2d {
                    height: 1,
                    width: n,
                    filter_height: 1,
                    filter_width: 3,
                    border: Border::Clamp,
                };
                drop(gpu.run(&conv, (xs, &filter)).unwrap());
            }
            _ => step_map_reduce(i, x, y, k),
        }
    };
    for i in 0..600 {
        step(i);
    }
    let g = gpu.gpu().unwrap();
    g.wait("soak").unwrap();
    let (warm_res, warm_stats, warm_rss) = (g.resource_counts(), gpu.stats(), rss_bytes());
    let mut i = 600;
    while gpu.stats().gpu_dispatches - warm_stats.gpu_dispatches < 10_000 {
        step(i);
        i += 1;
    }
    g.wait("soak").unwrap();
    let (res, stats, rss) = (g.resource_counts(), gpu.stats(), rss_bytes());
    let pool = |s: &tandem::Stats| s.device_bytes_live + s.device_bytes_pooled;
    assert!(
        pool(&stats) <= pool(&warm_stats),
        "pooled device memory grew: {warm_stats:?} -> {stats:?}"
    );
    // wgpu frees resources of finished work on its next poll: allow a few in flight.
    assert!(
        res.buffers <= warm_res.buffers + 16,
        "buffers grew: {warm_res:?} -> {res:?}"
    );
    assert!(
        res.bind_groups <= warm_res.bind_groups + 16,
        "bind groups grew: {warm_res:?} -> {res:?}"
    );
    assert!(
        res.buffer_memory <= warm_res.buffer_memory + (4 << 20),
        "buffer memory grew: {warm_res:?} -> {res:?}"
    );
    assert_eq!(
        res.compute_pipelines, warm_res.compute_pipelines,
        "pipelines were rebuilt"
    );
    // No buffer is created per dispatch or per call once warm: device
    // copies come from the pool, every dispatch's uniforms from one ring
    // buffer, readback staging from its own free list.
    assert_eq!(
        res.buffers_created,
        warm_res.buffers_created,
        "buffers were created in steady state over {} dispatches: {warm_res:?} -> {res:?}",
        stats.gpu_dispatches - warm_stats.gpu_dispatches
    );
    if let (Some(a), Some(b)) = (warm_rss, rss) {
        assert!(
            b <= a + (64 << 20),
            "host RSS grew from {} MiB to {} MiB",
            a >> 20,
            b >> 20
        );
    }
}

#[test]
fn eight_threads_share_one_engine_on_both_backends_without_deadlock() {
    let engine = engine().clone();
    with_watchdog(Duration::from_secs(300), move || {
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let e = engine.clone();
                s.spawn(move || {
                    let mut rng = Rng::new(100 + t);
                    for i in 0..200 {
                        let n = 1 + (rng.next_u32() % 20_000) as usize;
                        let backend =
                            [Backend::Cpu, Backend::Gpu, Backend::Auto][(i + t as usize) % 3];
                        if backend == Backend::Gpu && !e.has_gpu() {
                            continue;
                        }
                        let h = e.on(backend);
                        let x = rng.small_i32s(n, 2000);
                        let xb = Buffer::from(x.clone());
                        match i % 4 {
                            0 => assert_eq!(h.run(&Max, &xb).unwrap(), x.iter().copied().max()),
                            1 => {
                                let want = x.iter().fold(0i32, |a, &v| a.wrapping_add(v));
                                assert_eq!(h.run(&Sum, &xb).unwrap(), want);
                            }
                            2 => {
                                let y = h.run(&Unary::Neg, &xb).unwrap().to_vec().unwrap();
                                assert!(y.iter().zip(&x).all(|(a, b)| *a == b.wrapping_neg()));
                            }
                            _ => {
                                let f = Buffer::from(rng.f32s(n, -1.0, 1.0));
                                let z = h.run(&Axpy { a: 2.0 }, (&f, &f)).unwrap();
                                assert_eq!(
                                    h.run(&ArgMax, &z).unwrap(),
                                    h.on(Backend::Cpu).run(&ArgMax, &z).unwrap()
                                );
                            }
                        }
                    }
                });
            }
        });
    });
}

#[test]
fn gpu_calls_from_inside_rayon_workers_do_not_deadlock() {
    let Some(gpu) = on(Backend::Gpu) else { return };
    let engine = gpu.clone();
    with_watchdog(Duration::from_secs(120), move || {
        let inputs: Vec<Buffer<u32>> = (0..48)
            .map(|i| Buffer::from(vec![i as u32; 3000 + i]))
            .collect();
        // Inside the engine's own pool, and inside rayon's global pool.
        let sums: Vec<u32> = engine.cpu().install(|| {
            inputs
                .par_iter()
                .map(|b| engine.run(&Sum, b).unwrap())
                .collect()
        });
        let again: Vec<u32> = inputs
            .par_iter()
            .map(|b| engine.run(&Sum, b).unwrap())
            .collect();
        for (i, (s, t)) in sums.iter().zip(&again).enumerate() {
            assert_eq!((*s, *t), ((i * (3000 + i)) as u32, (i * (3000 + i)) as u32));
        }
    });
}

/// A user kernel that panics on an element equal to 13 (on both backends).
struct Fragile;

impl Kernel<&Buffer<f32>> for Fragile {
    type Out = Buffer<f32>;
    fn name(&self) -> &'static str {
        "fragile"
    }
    fn work(&self, x: &&Buffer<f32>) -> Work {
        Work::elementwise::<f32>(x.len(), 1, 1)
    }
    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<f32>) -> tandem::Result<Buffer<f32>> {
        let h = cpu.host(x)?;
        let out = cpu.map_chunks(&h, 1, |s: &[f32], d: &mut [f32]| {
            for (o, &v) in d.iter_mut().zip(s) {
                assert!(v != 13.0, "user kernel panicked on 13");
                *o = v;
            }
        });
        Ok(Buffer::from(out))
    }
    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<f32>) -> tandem::Result<Buffer<f32>> {
        gpu.scoped("fragile", || {
            let h = x.to_vec()?;
            assert!(!h.contains(&13.0), "user kernel panicked on 13");
            Ok(Buffer::from(h))
        })
    }
}

#[test]
fn a_panic_inside_a_user_kernel_reaches_the_caller_and_the_engine_still_works() {
    let engine = Engine::builder().build().unwrap();
    let mut v = vec![1.0f32; 1 << 20];
    v[777_777] = 13.0;
    let bad = Buffer::from(v);
    let cpu = engine.on(Backend::Cpu);
    // On the CPU (inside rayon workers) the panic propagates to the caller.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cpu.run(&Fragile, &bad)));
    assert!(caught.is_err(), "the panic was swallowed");
    assert_eq!(
        cpu.run(&Sum, &Buffer::from(vec![1.0f32; 1 << 20])).unwrap(),
        (1 << 20) as f32
    );
    // Inside a GPU scope it comes back as an error, and the GPU still works.
    if engine.has_gpu() {
        let gpu = engine.on(Backend::Gpu);
        let err = gpu.run(&Fragile, &bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Gpu {
                    kernel: "fragile",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("panicked on 13"), "{err}");
        assert_eq!(gpu.run(&Sum, &Buffer::from(vec![2u32; 999])).unwrap(), 1998);
    }
}
