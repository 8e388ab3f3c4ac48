//! The kernel catalogue: every kernel family with a shader has an entry,
//! every entry's call runs through the engine (`CallKernel`) on every
//! backend at the edge sizes, and its work estimate counts the call.

mod common;

use std::collections::BTreeSet;

use tandem::Backend;
use tandem::kernels::SHADERS;
use tandem::kernels::catalogue::{CallInput, CallKernel, FAMILIES};

/// Element counts around a workgroup (256) and odd ones; square probes take
/// the nearest side.
const SIZES: [usize; 6] = [1, 7, 255, 256, 257, 4099];

#[test]
fn every_shader_family_has_a_catalogue_family_and_no_kernel_is_listed_twice() {
    let families: BTreeSet<&str> = FAMILIES.iter().map(|f| f.name).collect();
    let shaders: BTreeSet<&str> = SHADERS.iter().map(|s| s.0).collect();
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
                let call = (probe.make)(n);
                assert_eq!(call.name(), probe.kernel, "{}: call name", probe.kernel);
                let work = call.work();
                assert!(
                    work.elements >= 1 && work.bytes() >= 4,
                    "{} n={n}: {work:?}",
                    probe.kernel
                );
                for (backend, engine) in &backends {
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
