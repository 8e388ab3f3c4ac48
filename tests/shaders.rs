//! Every WGSL file in `shaders/` parses and validates with naga, for every
//! element type it is specialized to, and compiles to SPIR-V for every value
//! of its `override` constants: a shader typo fails here, with no GPU.

use std::collections::BTreeSet;
use std::path::Path;

use naga::valid::{Capabilities, ValidationFlags, Validator};
use tandem::gpu::prepare_with;
use tandem::kernels::SHADERS;
use tandem::{ElementType, GpuFeatures};

const TYPES: [ElementType; 4] = [
    ElementType::F32,
    ElementType::I32,
    ElementType::U32,
    ElementType::F64,
];

/// Shaders of float-only kernels (gemm, conv2d: their accumulators are
/// `fma`s on `T`), specialized to f32 and f64 only.
const FLOAT_ONLY: [&str; 2] = ["conv", "gemm"];

fn validate(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    validate_with(name, source, Capabilities::default())
}

fn validate_with(
    name: &str,
    source: &str,
    caps: Capabilities,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: parse error:\n{}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: validation error:\n{}", e.emit_to_string(source)));
    (module, info)
}

/// The values each override takes in the kernels of `source`: `OP`, every
/// `case Nu:` its switches name (so a new operation is covered the day it
/// is written), and one past them for the default arm.
fn override_values(name: &str, source: &str) -> Vec<f64> {
    match name {
        "OP" => {
            let cases = source.split("case ").skip(1).filter_map(|c| {
                let digits: String = c.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u32>().ok()
            });
            (0..=cases.max().unwrap_or(0) + 1).map(f64::from).collect()
        }
        "IS_MAX" => vec![0.0, 1.0],
        // compact.wgsl: 0 keeps by a mask, 1..=6 compare (6, `!=`, is the
        // default arm).
        "MODE" => (0..=6).map(f64::from).collect(),
        // The look-back reads before the fallback (scan.wgsl, sort.wgsl's
        // onesweep): 0 (always fall back) and scan's default.
        "SPIN" => vec![0.0, 1024.0],
        other => panic!("unknown override {other}: add its values to this test"),
    }
}

#[test]
fn every_shader_file_is_listed_and_has_a_rust_twin() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("shaders/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = SHADERS.iter().map(|(s, _)| s.to_string()).collect();
    assert_eq!(
        files, listed,
        "shaders/ and tandem::kernels::SHADERS differ"
    );
    for stem in &files {
        // A family's extra shaders carry a suffix: sort64.wgsl is the sort module's.
        let family = stem.trim_end_matches(|c: char| c.is_ascii_digit());
        // The family's module: a file, or a folder with its `mod.rs`.
        let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kernels");
        assert!(
            kernels.join(format!("{family}.rs")).exists()
                || kernels.join(family).join("mod.rs").exists(),
            "shaders/{stem}.wgsl has no src/kernels/{family}.rs or src/kernels/{family}/mod.rs"
        );
        let on_disk = std::fs::read_to_string(dir.join(format!("{stem}.wgsl"))).unwrap();
        let embedded = SHADERS.iter().find(|(s, _)| s == stem).unwrap().1;
        assert!(
            embedded.starts_with(&on_disk),
            "{stem}.wgsl on disk differs from the start of the embedded shader"
        );
        assert!(
            embedded[on_disk.len()..].contains("struct Params {"),
            "{stem}: the embedded shader has no prelude and Params after the file"
        );
        let wg = format!("const WG: u32 = {}u;", tandem::gpu::WORKGROUP_SIZE);
        assert!(
            embedded[on_disk.len()..].contains(&wg),
            "{stem}: the prelude's WG is not gpu::WORKGROUP_SIZE"
        );
    }
}

#[test]
fn every_shader_validates_for_every_type_and_override() {
    // Each shader as a device without optional features compiles it (with
    // naga's default capabilities), and as one with every feature; f64 ones
    // only as devices with SHADER_F64 (naga's FLOAT64) compile them.
    for (stem, source) in SHADERS {
        for t in TYPES {
            if FLOAT_ONLY.contains(stem) && !t.is_float() {
                continue;
            }
            let forms = if t == ElementType::F64 {
                [
                    (
                        GpuFeatures::NONE.with_f64(true),
                        Capabilities::FLOAT64 | Capabilities::SHADER_INT64,
                    ),
                    (
                        GpuFeatures::ALL,
                        Capabilities::SUBGROUP
                            | Capabilities::SUBGROUP_BARRIER
                            | Capabilities::FLOAT64
                            | Capabilities::SHADER_INT64,
                    ),
                ]
            } else {
                [
                    (GpuFeatures::NONE, Capabilities::default()),
                    (
                        GpuFeatures::ALL,
                        Capabilities::SUBGROUP | Capabilities::SUBGROUP_BARRIER,
                    ),
                ]
            };
            for (features, caps) in forms {
                let src = prepare_with(source, Some(t), features)
                    .unwrap_or_else(|e| panic!("{stem}: {e}"));
                let name = format!("{stem}.wgsl as {t} with {features}");
                let (module, info) = validate_with(&name, &src, caps);
                assert!(!module.entry_points.is_empty(), "{name}: no entry points");
                let overrides: Vec<String> = module
                    .overrides
                    .iter()
                    .filter_map(|(_, o)| o.name.clone())
                    .filter(|n| n != "KIND")
                    .collect();
                // Every combination of the other overrides, with KIND fixed by the type.
                let mut combos: Vec<Vec<(String, f64)>> =
                    vec![vec![("KIND".into(), f64::from(t.kind_code()))]];
                for o in &overrides {
                    combos = combos
                        .into_iter()
                        .flat_map(|c| {
                            override_values(o, &src).into_iter().map(move |v| {
                                let mut c = c.clone();
                                c.push((o.clone(), v));
                                c
                            })
                        })
                        .collect();
                }
                for ep in &module.entry_points {
                    for combo in &combos {
                        let constants: naga::back::PipelineConstants =
                            combo.iter().cloned().collect();
                        let (m, i) = naga::back::pipeline_constants::process_overrides(
                            &module,
                            &info,
                            Some((naga::ShaderStage::Compute, &ep.name)),
                            &constants,
                        )
                        .unwrap_or_else(|e| panic!("{name} {}: {combo:?}: {e}", ep.name));
                        let options = naga::back::spv::Options::default();
                        let pipeline = naga::back::spv::PipelineOptions {
                            shader_stage: naga::ShaderStage::Compute,
                            entry_point: ep.name.clone(),
                        };
                        naga::back::spv::write_vec(&m, &i, &options, Some(&pipeline))
                            .unwrap_or_else(|e| {
                                panic!("{name} {}: {combo:?}: SPIR-V: {e}", ep.name)
                            });
                    }
                }
            }
        }
    }
}

#[test]
fn a_broken_shader_is_caught() {
    // The validator above must be able to fail.
    let bad = "alias T = f32;\n@compute @workgroup_size(64) fn main() { let x: T = 1u; }";
    let module = naga::front::wgsl::parse_str(bad);
    let failed = match module {
        Err(_) => true,
        Ok(m) => Validator::new(ValidationFlags::all(), Capabilities::default())
            .validate(&m)
            .is_err(),
    };
    assert!(failed);
}

#[test]
fn variants_expand_from_one_function_and_bad_directives_are_errors() {
    use tandem::gpu::expand_variants;
    let src = "@compute @workgroup_size(1)\nfn a(@builtin(local_invocation_index) i: u32) {\n    let x = 1u + i;\n}\n\
               // variant b of a: `1u` => `2u`\n// variant c of b: `2u + i` =>\n//     `3u * i`\n";
    let out = expand_variants(src).unwrap();
    assert!(out.contains("@compute @workgroup_size(1)\nfn b(@builtin(local_invocation_index) i: u32) {\n    let x = 2u + i;\n}"), "{out}");
    assert!(
        out.contains("fn c(@builtin(local_invocation_index) i: u32) {\n    let x = 3u * i;\n}"),
        "{out}"
    );
    validate("variants", &out);
    for (bad, why) in [
        ("// variant b of nope: `1u` => `2u`\n", "no function `nope`"),
        ("// variant b of a: `7u` => `2u`\n", "does not occur"),
        ("// variant b of a `1u` => `2u`\n", "no `:`"),
        ("// variant b of a: `1u` -> `2u`\n", "bad pair"),
    ] {
        let e = expand_variants(&format!("{src}{bad}")).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn type_sections_keep_the_f64_or_the_32_bit_helpers() {
    use tandem::gpu::type_sections;
    let src = "a\n// begin not-f64\nb\n// end not-f64\n// begin f64\nc\n// end f64\nd\n";
    for t in [ElementType::F32, ElementType::I32, ElementType::U32] {
        assert_eq!(type_sections(src, Some(t)).unwrap(), "a\nb\nd\n");
    }
    assert_eq!(type_sections(src, None).unwrap(), "a\nb\nd\n");
    assert_eq!(
        type_sections(src, Some(ElementType::F64)).unwrap(),
        "a\nc\nd\n"
    );
    for bad in [
        "// begin f64\nb\n",
        "// end f64\n",
        "// begin f64\n// end not-f64\n",
        "// begin f64\n// begin not-f64\n",
    ] {
        assert!(type_sections(bad, None).is_err(), "{bad:?}");
    }
}

#[test]
fn feature_sections_are_kept_only_with_their_feature() {
    use tandem::gpu::feature_sections;
    let src = "a\n// begin subgroups\nb\n// end subgroups\nc\n";
    assert_eq!(
        feature_sections(src, GpuFeatures::ALL).unwrap(),
        "a\nb\nc\n"
    );
    assert_eq!(feature_sections(src, GpuFeatures::NONE).unwrap(), "a\nc\n");
    for bad in [
        "// begin subgroups\nb\n",
        "// end subgroups\n",
        "// begin tensors\n// end tensors\n",
        "// begin subgroups\n// begin subgroups\n",
    ] {
        assert!(feature_sections(bad, GpuFeatures::ALL).is_err(), "{bad:?}");
    }
    // The reductions' subgroup entry points exist only with the feature.
    let reduce = SHADERS.iter().find(|(s, _)| *s == "reduce").unwrap().1;
    let with = prepare_with(reduce, None, GpuFeatures::ALL).unwrap();
    let without = prepare_with(reduce, None, GpuFeatures::NONE).unwrap();
    for entry in [
        "sum_sg",
        "dot_sg",
        "extreme_first_sg",
        "extreme_next_sg",
        "arg_first_sg",
        "arg_next_sg",
    ] {
        assert!(with.contains(&format!("fn {entry}(")), "{entry}");
        assert!(!without.contains(&format!("fn {entry}(")), "{entry}");
    }
    assert!(!without.contains("subgroupAdd"));
}
