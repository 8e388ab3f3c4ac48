//! Black–Scholes call and put prices of 2^22 options, written once as
//! expressions and run on both backends (and on `Auto`), checked against a
//! scalar f64 oracle, timed against the plain f32 loop.
//!
//! `cargo run --release --example expressions [-- <log2 options>]`

#[path = "common/black_scholes.rs"]
mod black_scholes;

use std::time::Instant;

use tandem::kernels::{Args, Map};
use tandem::{Backend, Buffer, Engine};

const R: f32 = 0.02;
const V: f32 = 0.30;

fn main() -> tandem::Result<()> {
    let log2: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(22);
    let n = 1usize << log2;
    let engine = Engine::new()?;
    let (call, put) = black_scholes::prices();
    let map = Map::with_outputs(vec![call, put])?;
    println!(
        "Black–Scholes over 2^{log2} options: {} operations per option after merging shared terms",
        map.operations()
    );
    let (s, k, t) = black_scholes::options(n, 42);
    let (bs, bk, bt) = (
        Buffer::from(s.clone()),
        Buffer::from(k.clone()),
        Buffer::from(t.clone()),
    );
    let args = Args::new()
        .array("s", &bs)
        .array("k", &bk)
        .array("t", &bt)
        .scalar("r", R)
        .scalar("v", V);

    // The oracle, and the tolerance: f32 prices within 2e-5 of S + K.
    let check = |call: &[f32], put: &[f32]| -> f64 {
        let mut worst = 0f64;
        for i in 0..n {
            let (c, p) = black_scholes::reference(s[i], k[i], t[i], R, V);
            let scale = f64::from(s[i] + k[i]);
            worst = worst.max((f64::from(call[i]) - c).abs() / scale);
            worst = worst.max((f64::from(put[i]) - p).abs() / scale);
        }
        worst
    };

    let mut backends = vec![("cpu", Backend::Cpu), ("auto", Backend::Auto)];
    if engine.has_gpu() {
        backends.insert(1, ("gpu", Backend::Gpu));
    } else {
        println!(
            "no GPU adapter ({}): running the CPU only; `apt-get install mesa-vulkan-drivers` gives a software one",
            engine.info().gpu_unavailable.unwrap_or_default()
        );
    }
    for (name, backend) in backends {
        let e = engine.on(backend);
        let run = || -> tandem::Result<(Vec<f32>, Vec<f32>)> {
            let mut out = e.run(&map, &args)?.0.into_iter();
            let call = out.next().expect("two outputs").into_f32()?.to_vec()?;
            let put = out.next().expect("two outputs").into_f32()?.to_vec()?;
            Ok((call, put))
        };
        let (call, put) = run()?;
        let worst = check(&call, &put);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            std::hint::black_box(run()?);
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "  {name:>4}: {:8.2} ms ({:6.1} M options/s), worst error {worst:.1e} of S + K{}",
            best * 1e3,
            n as f64 / best / 1e6,
            if worst <= 2e-5 {
                ""
            } else {
                "  <-- above 2e-5"
            }
        );
        assert!(worst <= 2e-5, "{name}: error {worst:e} above 2e-5 of S + K");
    }

    // The loop a user would write, in f32, on one thread.
    let start = Instant::now();
    let (mut c, mut p) = (vec![0f32; n], vec![0f32; n]);
    for i in 0..n {
        (c[i], p[i]) = black_scholes::price_f32(s[i], k[i], t[i], R, V);
    }
    let serial = start.elapsed().as_secs_f64();
    std::hint::black_box((c, p));
    println!(
        "  serial f32 loop: {:8.2} ms ({:6.1} M options/s)",
        serial * 1e3,
        n as f64 / serial / 1e6
    );
    println!("  explain (auto): {}", engine.explain(&map, &args));
    Ok(())
}
