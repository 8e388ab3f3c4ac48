//! The shortest tour: build an engine, run a chain of kernels, see where
//! each ran and what moved.
//!
//! `cargo run --release --example quickstart`

use tandem::kernels::{ArgMax, Axpy, Sum, Unary};
use tandem::{Backend, Buffer, Engine};

fn main() -> tandem::Result<()> {
    let engine = Engine::new()?;
    println!("{}\n", engine.info());

    let n = 1 << 20;
    let x = Buffer::from((0..n).map(|i| (i % 1000) as f32).collect::<Vec<_>>());
    let y = Buffer::from(vec![1.0f32; n]);

    // Auto: the dispatcher picks a backend per call.
    let z = engine.run(&Axpy { a: 2.0 }, (&x, &y))?;
    let r = engine.run(&Unary::Sqrt, &z)?;
    println!("{}\n", engine.explain(&Sum, &r));
    let s: f32 = engine.run(&Sum, &r)?;
    let (i, v) = engine.run(&ArgMax, &r)?.expect("non-empty");
    println!("auto: sum = {s}, argmax = {i} ({v})");

    // The same chain forced onto the GPU, when there is one.
    if engine.has_gpu() {
        let gpu = engine.on(Backend::Gpu);
        let before = engine.stats();
        let z = gpu.run(&Axpy { a: 2.0 }, (&x, &y))?;
        let r = gpu.run(&Unary::Sqrt, &z)?;
        let s: f32 = gpu.run(&Sum, &r)?;
        let moved = engine.stats().since(&before);
        println!(
            "gpu:  sum = {s}; uploaded {} B, downloaded {} B, {} dispatches",
            moved.bytes_uploaded, moved.bytes_downloaded, moved.gpu_dispatches
        );
    } else {
        println!(
            "gpu:  none ({})",
            engine.info().gpu_unavailable.unwrap_or_default()
        );
    }
    println!("\n{:?}", engine.stats());
    Ok(())
}
