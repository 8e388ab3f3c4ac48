//! The kernel catalogue: every kernel family with a shader has an entry,
//! every entry's call runs through the engine (`CallKernel`) on every
//! backend at the edge sizes, and its work estimate counts the call; every
//! entry matches its own scalar oracle at the edge sizes and, as a
//! property, at any size and seed, past one binding too.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tandem::kernels::SHADERS;
use tandem::kernels::catalogue::{CallInput, CallKernel, FAMILIES, ReadInput, ReadKernel};
use tandem::{Backend, Engine, Error, GpuFeatures};

/// Element counts around a workgroup (256) and odd ones; square probes take
/// the nearest side.
const SIZES: [usize; 6] = [1, 7, 255, 256, 257, 4099];

#[test]
fn every_shader_family_has_a_catalogue_family_and_no_kernel_is_listed_twice() {
    let families: BTreeSet<&str> = FAMILIES.iter().map(|f| f.name).collect();
    // A family's extra shaders carry a suffix (sort64 is sort's).
    let shaders: BTreeSet<&str> = SHADERS
        .iter()
        .map(|s| s.0.trim_end_matches(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(families, shaders, "catalogue families vs shaders/*.wgsl");
    let mut names = BTreeSet::new();
    for f in FAMILIES {
        assert!(!f.probes.is_empty(), "{}: no entries", f.name);
        for p in f.probes {
            assert!(names.insert(p.kernel), "{} listed twice", p.kernel);
        }
    }
}

#[test]
fn every_entry_runs_on_every_backend_at_edge_sizes_and_names_its_kernel() {
    let backends = common::backends();
    if common::require_gpu() {
        assert!(
            backends.iter().any(|(b, _)| *b == Backend::Gpu),
            "TANDEM_REQUIRE_GPU=1 but no GPU"
        );
    }
    for family in FAMILIES {
        for probe in family.probes {
            for n in SIZES {
                let call = probe.call(n);
                assert_eq!(call.name(), probe.kernel, "{}: call name", probe.kernel);
                let work = call.work();
                assert!(
                    work.elements >= 1 && work.bytes() >= 4,
                    "{} n={n}: {work:?}",
                    probe.kernel
                );
                for (backend, engine) in &backends {
                    if *backend == Backend::Gpu && probe.gpu_declines.is_some() {
                        expect_declined(probe, n, engine);
                        continue;
                    }
                    for to_host in [false, true] {
                        let call = call.fresh();
                        let input = CallInput {
                            call: &*call,
                            to_host,
                        };
                        let before = engine.stats();
                        engine
                            .run(&CallKernel(call.name()), input)
                            .unwrap_or_else(|e| panic!("{} n={n} on {backend}: {e}", probe.kernel));
                        let after = engine.stats();
                        let ran = match backend {
                            Backend::Gpu => after.gpu_runs > before.gpu_runs,
                            _ => after.cpu_runs > before.cpu_runs,
                        };
                        assert!(ran, "{} n={n}: not counted on {backend}", probe.kernel);
                    }
                }
            }
        }
    }
}

/// A forced GPU call of an entry the GPU declines returns `Unsupported`
/// (saying why), and under `Auto` the call runs on the CPU.
fn expect_declined(probe: &tandem::kernels::catalogue::Probe, n: usize, gpu: &Engine) {
    let call = probe.call(n);
    let e = gpu
        .run(
            &CallKernel(call.name()),
            CallInput {
                call: &*call,
                to_host: true,
            },
        )
        .expect_err("declined on the GPU");
    assert!(
        matches!(e, Error::Unsupported { .. }),
        "{}: {e}",
        probe.kernel
    );
    let auto = gpu.on(Backend::Auto);
    let before = auto.stats();
    auto.run(
        &CallKernel(call.name()),
        CallInput {
            call: &*call,
            to_host: true,
        },
    )
    .unwrap_or_else(|e| panic!("{} n={n} on auto: {e}", probe.kernel));
    assert!(
        auto.stats().cpu_runs > before.cpu_runs,
        "{}: auto did not run on the CPU",
        probe.kernel
    );
}

/// Every entry on every backend, through the engine, against the entry's
/// own scalar oracle within its stated tolerance: the catalogue's
/// conformance suite, so a new entry is checked the day it is added.
#[test]
fn every_entry_matches_its_oracle_on_every_backend_at_edge_sizes() {
    let backends = common::backends();
    for family in FAMILIES {
        for probe in family.probes {
            for (n, seed) in std::iter::once(0).chain(SIZES).zip(1u64..) {
                let call = (probe.make)(n, seed);
                let want = call.oracle();
                for (backend, engine) in &backends {
                    if *backend == Backend::Gpu && probe.gpu_declines.is_some() {
                        continue; // checked to decline above
                    }
                    let call = call.fresh();
                    let got = engine
                        .run(&ReadKernel(call.name()), ReadInput(&*call))
                        .unwrap_or_else(|e| panic!("{} n={n} on {backend}: {e}", probe.kernel));
                    if let Err(e) = call.tolerance().check(&got, &want) {
                        panic!("{} n={n} seed={seed} on {backend}: {e}", probe.kernel);
                    }
                }
            }
        }
    }
}

/// A GPU engine whose bindings hold 16,384 f32: sizes past it cross a
/// binding (reductions, maps, scans and compaction chunk; transpose,
/// conv2d and gemm move in blocks; sort in chunks and output windows, its
/// f64 gathers in chunks and source windows), and
/// every family must still match its oracle there.
fn small_binding_engine() -> Option<&'static Engine> {
    static SMALL: OnceLock<Option<Engine>> = OnceLock::new();
    SMALL
        .get_or_init(|| common::small_binding_engine().map(|e| e.on(Backend::Gpu)))
        .as_ref()
}

/// A GPU engine with subgroups masked, when the adapter has them: every
/// kernel with a subgroup path runs its workgroup-memory fallback.
fn no_subgroup_engine() -> Option<&'static Engine> {
    static MASKED: OnceLock<Option<Engine>> = OnceLock::new();
    let mask = GpuFeatures::ALL.with_subgroups(false);
    masked(&MASKED, |f| f.subgroups, mask, Backend::Gpu)
}

/// An engine with `mask` on its GPU, forced onto `backend`, built once into
/// `cell`; `None` without a GPU, or when the GPU lacks the feature anyway
/// (`has`), so masking it would test nothing.
fn masked(
    cell: &'static OnceLock<Option<Engine>>,
    has: fn(&GpuFeatures) -> bool,
    mask: GpuFeatures,
    backend: Backend,
) -> Option<&'static Engine> {
    cell.get_or_init(|| {
        let plain = common::on(Backend::Gpu)?;
        if !has(&plain.gpu()?.info().features) {
            return None;
        }
        let e = Engine::builder().gpu_features(mask).build().ok()?;
        e.gpu()?;
        Some(e.on(backend))
    })
    .as_ref()
}

#[test]
fn the_subgroup_mask_takes_effect() {
    let Some(e) = no_subgroup_engine() else {
        eprintln!("no GPU with subgroups: only one reduction path to test");
        return;
    };
    let info = e.gpu().unwrap().info();
    assert!(!info.features.subgroups, "{info}");
    assert!(
        info.subgroup_sizes.0 >= 1,
        "the adapter still reports its sizes"
    );
}

/// An `Auto` engine whose GPU has f64 masked, when the adapter has it:
/// every f64 call must be declined by the GPU and run on the CPU.
fn no_f64_engine() -> Option<&'static Engine> {
    static MASKED: OnceLock<Option<Engine>> = OnceLock::new();
    let mask = GpuFeatures::ALL.with_f64(false);
    masked(&MASKED, |f| f.f64, mask, Backend::Auto)
}

#[test]
fn with_f64_masked_every_f64_entry_is_declined_by_the_gpu_and_runs_on_the_cpu() {
    let Some(auto) = no_f64_engine() else {
        assert!(
            !common::require_gpu()
                || !common::on(Backend::Gpu).is_some_and(|e| e.gpu().unwrap().info().features.f64),
            "the GPU has f64 but no masked engine was made"
        );
        eprintln!("no GPU with f64: nothing to mask");
        return;
    };
    let info = auto.gpu().unwrap().info();
    assert!(!info.features.f64, "{info}");
    let gpu = auto.on(Backend::Gpu);
    let mut checked = 0;
    for family in FAMILIES {
        for probe in family.probes.iter().filter(|p| p.kernel.ends_with("_f64")) {
            let call = probe.call(4099);
            let want = call.oracle();
            let e = gpu
                .run(&ReadKernel(call.name()), ReadInput(&*call))
                .expect_err("f64 is masked");
            match &e {
                Error::Unsupported { reason, .. }
                    if probe.gpu_declines.is_some() || reason.contains("SHADER_F64") => {}
                e => panic!("{}: {e}", probe.kernel),
            }
            // `explain` says why the GPU was not chosen; `Auto` runs it on the CPU.
            let why = auto.explain(&ReadKernel(call.name()), ReadInput(&*call));
            assert_eq!(why.chosen, Backend::Cpu, "{}: {why}", probe.kernel);
            let declined = why.gpu_declined.as_deref().unwrap_or_default();
            assert!(declined.contains("f64"), "{}: {why}", probe.kernel);
            assert!(why.to_string().contains("gpu: declined"), "{why}");
            let before = auto.stats();
            let got = auto
                .run(&ReadKernel(call.name()), ReadInput(&*call))
                .unwrap_or_else(|e| panic!("{} on auto: {e}", probe.kernel));
            let after = auto.stats();
            assert!(
                after.cpu_runs > before.cpu_runs,
                "{}: not on the CPU",
                probe.kernel
            );
            call.tolerance()
                .check(&got, &want)
                .unwrap_or_else(|e| panic!("{}: {e}", probe.kernel));
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked} f64 entries");
}

fn engines() -> &'static [(String, Engine)] {
    static ALL: OnceLock<Vec<(String, Engine)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<(String, Engine)> = common::backends()
            .into_iter()
            .map(|(b, e)| (b.to_string(), e))
            .collect();
        if let Some(e) = small_binding_engine() {
            all.push(("gpu (64 KiB bindings)".into(), e.clone()));
        }
        if let Some(e) = no_subgroup_engine() {
            all.push(("gpu (subgroups masked)".into(), e.clone()));
        }
        if let Some(e) = no_f64_engine() {
            all.push(("auto (f64 masked)".into(), e.clone()));
        }
        all
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any entry, at any size up to past a small binding, on inputs from any
    /// seed, on every backend: within its tolerance of its oracle.
    #[test]
    fn any_entry_matches_its_oracle_at_any_size_and_seed(
        entry in 0..FAMILIES.iter().map(|f| f.probes.len()).sum::<usize>(),
        n in prop_oneof![0usize..600, 16_000usize..20_000],
        seed in any::<u64>(),
    ) {
        let probe = FAMILIES
            .iter()
            .flat_map(|f| f.probes.iter())
            .nth(entry)
            .unwrap();
        let call = (probe.make)(n, seed);
        let want = call.oracle();
        for (name, engine) in engines() {
            let call = call.fresh();
            match engine.run(&ReadKernel(call.name()), ReadInput(&*call)) {
                Ok(got) => {
                    if let Err(e) = call.tolerance().check(&got, &want) {
                        return Err(TestCaseError::fail(format!("{} n={n} on {name}: {e}", probe.kernel)));
                    }
                }
                Err(Error::Unsupported { .. }) if name.starts_with("gpu") && probe.gpu_declines.is_some() => {}
                Err(e) => return Err(TestCaseError::fail(format!("{} n={n} on {name}: {e}", probe.kernel))),
            }
        }
    }
}
