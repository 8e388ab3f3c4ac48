//! Calibration, saved profiles and residency-aware decisions. Every profile
//! here lives in a temporary directory: nothing reads or writes the user's
//! cache.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tandem::CalibrateOptions;
use tandem::dispatch::profile::{
    Curve, KernelProfile, LinkCost, PROFILE_FORMAT, PROFILE_VERSION, ProfileKey, ProfileRejection,
    TransferProfile,
};
use tandem::dispatch::{Axis, BackendCost, Profile};
use tandem::kernels::catalogue::FAMILIES;
use tandem::kernels::{Axpy, Gemm, Sum, Unary};
use tandem::{Backend, Buffer, Engine, Residency, ResultUse};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "tandem-calibration-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An engine that loads nothing from disk.
fn plain_engine() -> Engine {
    Engine::builder().load_profile(false).build().unwrap()
}

/// `latency + n / per_s` at sizes 2^4 .. 2^26.
fn line(latency: f64, per_s: f64) -> Curve {
    Curve::fit(
        (4..=26)
            .step_by(2)
            .map(|k| (1u64 << k, latency + (1u64 << k) as f64 / per_s))
            .collect(),
    )
}

/// A hand-made profile for `key`: the CPU at 1 G elements/s, the GPU
/// `gpu_speedup` times that, a link of `link` bytes/s, for `neg`, `sum`
/// and `axpy`; and `gemm` keyed on flops, the CPU at 10 Gflop/s, the GPU
/// `gpu_speedup` times that.
fn hand_profile(key: ProfileKey, gpu_speedup: f64, link: f64) -> Profile {
    let cpu_rate = 1e9;
    let mut kernels = BTreeMap::new();
    for (name, family) in [("neg", "map"), ("sum", "reduce"), ("axpy", "map")] {
        kernels.insert(
            name.to_string(),
            KernelProfile {
                family: family.into(),
                axis: Axis::Elements,
                cpu: line(1e-6, cpu_rate),
                gpu: line(40e-6, cpu_rate * gpu_speedup),
            },
        );
    }
    let cpu_flops = 10e9;
    kernels.insert(
        "gemm".to_string(),
        KernelProfile {
            family: "gemm".into(),
            axis: Axis::Flops,
            cpu: line(1e-6, cpu_flops),
            gpu: line(40e-6, cpu_flops * gpu_speedup),
        },
    );
    let cost = |latency_s, bytes_per_s| BackendCost {
        latency_s,
        bytes_per_s,
        flops_per_s: bytes_per_s,
    };
    Profile {
        format: PROFILE_FORMAT.into(),
        version: PROFILE_VERSION,
        key,
        created_unix_s: 1_700_000_000,
        calibration_s: 1.0,
        transfer: Some(TransferProfile {
            upload: LinkCost {
                latency_s: 30e-6,
                bytes_per_s: link,
            },
            download: LinkCost {
                latency_s: 30e-6,
                bytes_per_s: link,
            },
            round_trip_s: 100e-6,
        }),
        cpu: cost(20e-6, 8e9),
        cpu_serial: cost(1e-6, 8e9),
        gpu: Some(cost(40e-6, 8e9 * gpu_speedup)),
        kernels,
    }
}

/// An engine with a GPU, or `None` under the common skip rule.
fn gpu_engine_with(profile: Profile) -> Option<Engine> {
    common::on(Backend::Gpu)?;
    Some(Engine::builder().profile(profile).build().unwrap())
}

#[test]
fn profile_round_trips_through_save_and_load() {
    let dir = TempDir::new("roundtrip");
    let path = dir.file("nested/p.json");
    let key = plain_engine().profile_key().clone();
    let p = hand_profile(key.clone(), 100.0, 10e9);
    p.save(&path).unwrap();
    let back = Profile::load(&path, Some(&key)).unwrap();
    assert_eq!(back, p);
    // And an engine pointed at the file uses it.
    let e = Engine::builder().profile_path(&path).build().unwrap();
    let source = &e.cost_model().source;
    assert!(source.contains("p.json"), "{source}");
    assert!(e.cost_model().measured("neg"));
}

#[test]
fn corrupt_foreign_and_old_profiles_are_ignored_for_defaults() {
    let dir = TempDir::new("bad");
    let key = plain_engine().profile_key().clone();
    let defaults = plain_engine().cost_model().source.clone();

    let corrupt = dir.file("corrupt.json");
    std::fs::write(
        &corrupt,
        "{ \"format\": \"tandem-profile\", \"version\": 1, \"key\": [",
    )
    .unwrap();
    assert!(matches!(
        Profile::load(&corrupt, Some(&key)),
        Err(ProfileRejection::Corrupt(_))
    ));

    let foreign = dir.file("foreign.json");
    let mut other = key.clone();
    other.cpu = "a CPU from elsewhere".into();
    hand_profile(other, 100.0, 10e9).save(&foreign).unwrap();
    assert!(matches!(
        Profile::load(&foreign, Some(&key)),
        Err(ProfileRejection::Foreign(_))
    ));

    let old = dir.file("old.json");
    let text = serde_json_like_version(&hand_profile(key.clone(), 100.0, 10e9), &dir, 0);
    std::fs::write(&old, text).unwrap();
    assert!(matches!(
        Profile::load(&old, Some(&key)),
        Err(ProfileRejection::Version(0))
    ));
    // Version 1 curves were keyed on elements for every kernel (no `axis`).
    let v1 = dir.file("v1.json");
    let text = serde_json_like_version(&hand_profile(key.clone(), 100.0, 10e9), &dir, 1)
        .replace("\"axis\": \"flops\",", "")
        .replace("\"axis\": \"elements\",", "");
    assert!(!text.contains("axis"));
    std::fs::write(&v1, text).unwrap();
    assert!(matches!(
        Profile::load(&v1, Some(&key)),
        Err(ProfileRejection::Version(1))
    ));

    let insane = dir.file("insane.json");
    let mut p = hand_profile(key.clone(), 100.0, 10e9);
    p.cpu.bytes_per_s = -1.0;
    p.save(&insane).unwrap();
    assert!(matches!(
        Profile::load(&insane, Some(&key)),
        Err(ProfileRejection::Corrupt(_))
    ));

    // Each is ignored (a warning on stderr) and the engine keeps its defaults.
    for path in [
        &corrupt,
        &foreign,
        &old,
        &v1,
        &insane,
        &dir.file("missing.json"),
    ] {
        let e = Engine::builder().profile_path(path).build().unwrap();
        assert_eq!(e.cost_model().source, defaults, "{}", path.display());
        assert!(!e.cost_model().measured("neg"));
    }
}

/// The saved text of `p` with its version replaced by `version`.
fn serde_json_like_version(p: &Profile, dir: &TempDir, version: u32) -> String {
    let tmp = dir.file("tmp.json");
    p.save(&tmp).unwrap();
    let text = std::fs::read_to_string(&tmp).unwrap();
    text.replacen(
        &format!("\"version\": {PROFILE_VERSION}"),
        &format!("\"version\": {version}"),
        1,
    )
}

#[test]
fn fast_gpu_profile_sends_large_resident_inputs_to_gpu_and_tiny_host_inputs_to_cpu() {
    let key = plain_engine().profile_key().clone();
    let Some(e) = gpu_engine_with(hand_profile(key, 100.0, 10e9)) else {
        return;
    };
    let tiny = Buffer::from(vec![1.0f32; 16]);
    assert_eq!(e.choose(&Unary::Neg, &tiny), Backend::Cpu);
    assert_eq!(e.choose(&Sum, &tiny), Backend::Cpu);

    let big = Buffer::from(vec![1.0f32; 1 << 20]);
    e.gpu().unwrap().resident("test", &big).unwrap();
    assert_eq!(e.choose(&Unary::Neg, &big), Backend::Gpu);
    assert_eq!(e.choose(&Sum, &big), Backend::Gpu);
    let out = e.run(&Unary::Neg, &big).unwrap();
    assert_eq!(
        out.residency(),
        Residency::Device,
        "Auto should have run on the GPU"
    );
    let report = e.explain(&Unary::Neg, &big).to_string();
    assert!(
        report.contains("-> gpu") && report.contains("measured curves for neg"),
        "{report}"
    );
}

#[test]
fn slow_gpu_profile_keeps_everything_on_the_cpu() {
    let key = plain_engine().profile_key().clone();
    let Some(e) = gpu_engine_with(hand_profile(key, 0.5, 4e9)) else {
        return;
    };
    for n in [1usize, 1000, 1 << 16, 1 << 20] {
        let x = Buffer::from(vec![1.0f32; n]);
        let y = Buffer::from(vec![2.0f32; n]);
        assert_eq!(e.choose(&Unary::Neg, &x), Backend::Cpu, "n={n} host");
        assert_eq!(
            e.choose(&Axpy { a: 2.0 }, (&x, &y)),
            Backend::Cpu,
            "n={n} host"
        );
        let g = e.gpu().unwrap();
        g.resident("test", &x).unwrap();
        g.resident("test", &y).unwrap();
        assert_eq!(e.choose(&Unary::Neg, &x), Backend::Cpu, "n={n} resident");
        assert_eq!(e.choose(&Sum, &x), Backend::Cpu, "n={n} resident");
        assert_eq!(
            e.choose(&Axpy { a: 2.0 }, (&x, &y)),
            Backend::Cpu,
            "n={n} resident"
        );
    }
}

#[test]
fn decisions_change_when_an_input_is_already_resident() {
    let key = plain_engine().profile_key().clone();
    // A fast GPU behind a slow link: worth it only for data already there.
    let Some(e) = gpu_engine_with(hand_profile(key, 100.0, 2e9)) else {
        return;
    };
    let x = Buffer::from(vec![1.0f32; 1 << 20]);
    let y = Buffer::from(vec![1.0f32; 1 << 20]);
    assert_eq!(e.choose(&Unary::Neg, &x), Backend::Cpu);
    assert_eq!(e.choose(&Axpy { a: 1.0 }, (&x, &y)), Backend::Cpu);
    e.gpu().unwrap().resident("test", &x).unwrap();
    assert_eq!(e.choose(&Unary::Neg, &x), Backend::Gpu);
    // One of two inputs resident: the other still pays its upload.
    let ex = e.explain(&Axpy { a: 1.0 }, (&x, &y));
    assert_eq!(ex.gpu.unwrap().transfer_bytes, 4 << 20, "{ex}");
    e.gpu().unwrap().resident("test", &y).unwrap();
    assert_eq!(e.choose(&Axpy { a: 1.0 }, (&x, &y)), Backend::Gpu);

    // A result the caller reads on the host costs its download on the GPU.
    let host = e.result_use(ResultUse::Host).explain(&Unary::Neg, &x);
    let stay = e.result_use(ResultUse::Device).explain(&Unary::Neg, &x);
    assert!(host.result_to_host && !stay.result_to_host);
    let (h, s) = (host.gpu.unwrap(), stay.gpu.unwrap());
    assert_eq!(h.transfer_bytes - s.transfer_bytes, 4 << 20);
    assert!(h.total_s() > s.total_s());
}

#[test]
fn quick_calibration_measures_every_registered_kernel_saves_and_reloads() {
    let dir = TempDir::new("quick");
    let path = dir.file("quick.json");
    let e = Engine::builder().profile_path(&path).build().unwrap();
    let mut opts = CalibrateOptions::quick();
    opts.save = true;
    let mut seen = Vec::new();
    let profile = e
        .calibrate_with(&opts, |p| seen.push((p.done, p.total)))
        .unwrap();
    let total = seen.last().unwrap().1;
    assert_eq!(seen.last().unwrap().0, total);
    assert!(seen.windows(2).all(|w| w[0].0 + 1 == w[1].0), "{seen:?}");
    for family in FAMILIES {
        for probe in family.probes {
            let k = &profile.kernels[probe.kernel];
            assert_eq!(k.family, family.name);
            assert!(k.cpu.is_valid(), "{}: {:?}", probe.kernel, k.cpu);
            if e.has_gpu() && probe.gpu_declines.is_none() {
                assert!(k.gpu.is_valid(), "{}: {:?}", probe.kernel, k.gpu);
            }
        }
    }
    // Kernels whose cost is not linear in their elements are keyed on flops.
    for kernel in ["gemm", "conv2d"] {
        assert_eq!(profile.kernels[kernel].axis, Axis::Flops, "{kernel}");
    }
    for kernel in ["inclusive_scan", "compact", "histogram", "transpose"] {
        assert_eq!(profile.kernels[kernel].axis, Axis::Elements, "{kernel}");
    }
    assert_eq!(e.has_gpu(), profile.transfer.is_some());
    // The engine uses it at once, and a new engine loads it from the file.
    assert!(e.cost_model().measured("axpy"));
    let again = Engine::builder().profile_path(&path).build().unwrap();
    assert_eq!(again.cost_model().kernels, profile.kernels);
    let text = again
        .explain(&Sum, &Buffer::from(vec![1.0f32; 100]))
        .to_string();
    assert!(
        text.contains("quick.json") && text.contains("measured curves for sum"),
        "{text}"
    );
    // A kernel the profile lacks falls back to the generic constants.
    assert!(!again.cost_model().measured("my_kernel"));
}

#[test]
fn auto_runs_where_explain_says_at_every_size_including_the_tiny_shortcut() {
    let key = plain_engine().profile_key().clone();
    let Some(e) = gpu_engine_with(hand_profile(key, 100.0, 10e9)) else {
        return;
    };
    assert!(
        e.cost_model().cpu_floor() > 1,
        "a 40 us GPU floor leaves room"
    );
    for n in [1usize, 100, 1 << 12, 1 << 16, 1 << 20] {
        for resident in [false, true] {
            let x = Buffer::from(vec![1.0f32; n]);
            if resident {
                e.gpu().unwrap().resident("test", &x).unwrap();
            }
            let expected = e.explain(&Sum, &x).chosen;
            let before = e.stats();
            let _: f32 = e.run(&Sum, &x).unwrap();
            let ran = if e.stats().since(&before).gpu_runs == 1 {
                Backend::Gpu
            } else {
                Backend::Cpu
            };
            assert_eq!(ran, expected, "n={n} resident={resident}");
        }
    }
}

/// `m × k` and `k × n` host matrices.
fn matrices(m: usize, n: usize, k: usize) -> (Buffer<f32>, Buffer<f32>) {
    (
        Buffer::from(vec![0.5f32; m * k]),
        Buffer::from(vec![0.25f32; k * n]),
    )
}

#[test]
fn gemm_is_priced_by_its_flops_not_its_elements() {
    let key = plain_engine().profile_key().clone();
    let e = Engine::builder()
        .profile(hand_profile(key, 100.0, 10e9))
        .build()
        .unwrap();
    // Same flops, 16x fewer output elements: about the same CPU estimate.
    let (a, b) = matrices(256, 256, 256);
    let square = e.explain(&Gemm::new(256, 256, 256), (&a, &b));
    let (a, b) = matrices(64, 64, 4096);
    let deep = e.explain(&Gemm::new(64, 64, 4096), (&a, &b));
    assert!(square.measured && deep.measured);
    assert!(deep.work.elements * 16 == square.work.elements);
    let (s, d) = (square.cpu.total_s(), deep.cpu.total_s());
    assert!((s / d - 1.0).abs() < 0.1, "square {s} s, deep {d} s");
    // 2·256³ flops at 10 Gflop/s.
    assert!((s - 2.0 * 256f64.powi(3) / 10e9).abs() < 0.1 * s, "{s}");
}

#[test]
fn a_large_resident_gemm_goes_to_a_fast_gpu_and_a_tiny_host_gemm_stays() {
    let key = plain_engine().profile_key().clone();
    let Some(e) = gpu_engine_with(hand_profile(key, 100.0, 10e9)) else {
        return;
    };
    let n = 256;
    let (a, b) = matrices(n, n, n);
    let g = e.gpu().unwrap();
    g.resident("test", &a).unwrap();
    g.resident("test", &b).unwrap();
    let big = Gemm::new(n, n, n);
    assert_eq!(
        e.choose(&big, (&a, &b)),
        Backend::Gpu,
        "{}",
        e.explain(&big, (&a, &b))
    );
    let before = e.stats();
    let c = e.run(&big, (&a, &b)).unwrap();
    assert_eq!(e.stats().since(&before).gpu_runs, 1);
    assert_eq!(c.to_vec().unwrap()[0], 0.125 * n as f32);

    let (a, b) = matrices(4, 4, 4);
    let tiny = Gemm::new(4, 4, 4);
    assert_eq!(
        e.choose(&tiny, (&a, &b)),
        Backend::Cpu,
        "{}",
        e.explain(&tiny, (&a, &b))
    );
    let before = e.stats();
    let c = e.run(&tiny, (&a, &b)).unwrap();
    assert_eq!(e.stats().since(&before).gpu_runs, 0);
    assert_eq!(c.to_vec().unwrap(), vec![0.5; 16]);
}
