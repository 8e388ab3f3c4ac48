//! A kernel of your own: a WGSL shader and a CPU function behind the same
//! `Kernel` trait tandem's kernels use, so it gets the dispatcher, mirrored
//! buffers, error scopes and chunking for free.
//!
//! The kernel here is `Clamp { lo, hi }` on f32: `min(max(x, lo), hi)`.
//!
//! `cargo run --release --example custom_kernel`

use tandem::cpu::simd;
use tandem::gpu::ShaderSpec;
use tandem::{Backend, Buffer, Cpu, Engine, Gpu, Kernel, Work};

/// The GPU half. `params.n` bounds the threads of a chunk; the 2-D fold of
/// large dispatches is undone by `wid.x + wid.y * nwg.x`.
const SHADER: &str = r#"
struct Params { n: u32, lo: f32, hi: f32, _pad: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn clamp_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if i < params.n {
        out[i] = min(max(x[i], params.lo), params.hi);
    }
}
"#;

/// Clamps every element into `[lo, hi]`.
struct Clamp {
    lo: f32,
    hi: f32,
}

impl Kernel<&Buffer<f32>> for Clamp {
    type Out = Buffer<f32>;

    fn name(&self) -> &'static str {
        "clamp"
    }

    fn work(&self, x: &&Buffer<f32>) -> Work {
        Work::elementwise::<f32>(x.len(), 1, 2)
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<f32>) -> tandem::Result<Buffer<f32>> {
        let src = cpu.host(x)?;
        let (lo, hi) = (self.lo, self.hi);
        let (vlo, vhi) = (simd::F32::splat(lo), simd::F32::splat(hi));
        let out = cpu.map_chunks(&src, 1, move |s: &[f32], d: &mut [f32]| {
            simd::map(s, d, |v| v.max(vlo).min(vhi), |v| v.max(lo).min(hi));
        });
        Ok(Buffer::from(out))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<f32>) -> tandem::Result<Buffer<f32>> {
        let n = x.len();
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        // Everything inside `scoped` reports wgpu errors as tandem errors.
        gpu.scoped("clamp", || {
            let pipeline = gpu.pipeline(&ShaderSpec {
                label: "clamp",
                source: SHADER,
                entry: "clamp_main",
                element: None,
                constants: &[],
            })?;
            let input = gpu.resident("clamp", x)?; // uploads only if stale
            let out = gpu.alloc::<f32>("clamp", n)?;
            // One dispatch per chunk that fits a storage binding; binding 0
            // is the chunk's uniform, then `input` and `out` over its range.
            let (lo, hi) = (self.lo.to_bits(), self.hi.to_bits());
            gpu.submit_elementwise::<f32, _>(
                "clamp",
                &pipeline,
                n,
                &[(1, &input), (2, &out)],
                |c| [c.len() as u32, lo, hi, 0],
            )?;
            Ok(gpu.into_buffer(out, n)) // born resident on the GPU
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let n = 1_000_003;
    let data: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin() * 10.0).collect();
    let x = Buffer::from(data.clone());
    let kernel = Clamp { lo: -2.5, hi: 4.0 };
    let want: Vec<f32> = data.iter().map(|v| v.clamp(-2.5, 4.0)).collect();

    let cpu = engine.on(Backend::Cpu).run(&kernel, &x)?.to_vec()?;
    assert_eq!(cpu, want, "CPU clamp is wrong");
    println!("cpu:  clamp of {n} elements matches the scalar loop");
    if engine.has_gpu() {
        let gpu = engine.on(Backend::Gpu).run(&kernel, &x)?.to_vec()?;
        assert_eq!(gpu, want, "GPU clamp is wrong");
        println!("gpu:  clamp of {n} elements matches the scalar loop");
    } else {
        println!(
            "gpu:  skipped ({})",
            engine.info().gpu_unavailable.unwrap_or_default()
        );
    }
    let auto = engine.run(&kernel, &x)?;
    assert_eq!(auto.to_vec()?, want);
    println!(
        "auto: ran on {}\n{}",
        engine.choose(&kernel, &x),
        engine.explain(&kernel, &x)
    );
    Ok(())
}
