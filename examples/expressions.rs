//! Black–Scholes call and put prices of 2^22 options, written once as
//! expressions and run on both backends (and on `Auto`), in f32 and in f64,
//! checked against a scalar f64 oracle, timed against the plain f32 loop.
//!
//! `cargo run --release --example expressions [-- <log2 options>]`

#[path = "common/black_scholes.rs"]
mod black_scholes;

use std::time::Instant;

use tandem::kernels::{Args, Array, Map, Scalar};
use tandem::{Backend, Buffer, Element, Engine};

const R: f32 = 0.02;
const V: f32 = 0.30;

/// An output array as a buffer of its float type (`Array::into_f32`, ...).
type Unwrap<T> = fn(Array) -> tandem::Result<Buffer<T>>;

/// Prices the options `(s, k, t)` in float type `T` on every backend of
/// `engine`, prints the time and the worst error against the f64 oracle
/// (relative to S + K), and fails past `tolerance`.
fn run<T>(
    engine: &Engine,
    options: (&[f32], &[f32], &[f32]),
    into: Unwrap<T>,
    tolerance: f64,
) -> tandem::Result<()>
where
    T: Element + Into<f64> + Into<Scalar> + From<f32>,
{
    let (s, k, t) = options;
    let n = s.len();
    let map = Map::with_outputs({
        let (call, put) = black_scholes::prices_of::<T>();
        vec![call, put]
    })?;
    let wide = |v: &[f32]| Buffer::from(v.iter().map(|&x| T::from(x)).collect::<Vec<T>>());
    let (bs, bk, bt) = (wide(s), wide(k), wide(t));
    let args = Args::new()
        .array("s", &bs)
        .array("k", &bk)
        .array("t", &bt)
        .scalar("r", T::from(R))
        .scalar("v", T::from(V));
    let check = |call: &[T], put: &[T]| -> f64 {
        let mut worst = 0f64;
        for i in 0..n {
            let (c, p) = black_scholes::reference(s[i], k[i], t[i], R, V);
            let scale = f64::from(s[i] + k[i]);
            worst = worst.max((Into::<f64>::into(call[i]) - c).abs() / scale);
            worst = worst.max((Into::<f64>::into(put[i]) - p).abs() / scale);
        }
        worst
    };
    let mut backends = vec![("cpu", Backend::Cpu), ("auto", Backend::Auto)];
    if engine.has_gpu() {
        backends.insert(1, ("gpu", Backend::Gpu));
    }
    println!(
        "{} ({} operations per option after merging shared terms):",
        T::TYPE,
        map.operations()
    );
    for (name, backend) in backends {
        let e = engine.on(backend);
        let once = || -> tandem::Result<(Vec<T>, Vec<T>)> {
            let mut out = e.run(&map, &args)?.0.into_iter();
            let mut next = || into(out.next().expect("two outputs"))?.to_vec();
            Ok((next()?, next()?))
        };
        let (call, put) = once()?;
        let worst = check(&call, &put);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            std::hint::black_box(once()?);
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "  {name:>4}: {:8.2} ms ({:6.1} M options/s), worst error {worst:.1e} of S + K{}",
            best * 1e3,
            n as f64 / best / 1e6,
            if worst <= tolerance {
                ""
            } else {
                "  <-- above the bound"
            }
        );
        assert!(
            worst <= tolerance,
            "{} on {name}: error {worst:e} above {tolerance:e} of S + K",
            T::TYPE
        );
    }
    println!("  explain (auto): {}", engine.explain(&map, &args));
    Ok(())
}

fn main() -> tandem::Result<()> {
    let log2: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(22);
    let n = 1usize << log2;
    let engine = Engine::new()?;
    println!("Black–Scholes over 2^{log2} options");
    if !engine.has_gpu() {
        println!(
            "no GPU adapter ({}): running the CPU only; `apt-get install mesa-vulkan-drivers` gives a software one",
            engine.info().gpu_unavailable.unwrap_or_default()
        );
    }
    let (s, k, t) = black_scholes::options(n, 42);
    // f32 prices within 2e-5 of S + K; f64 ones within 1e-12 (the same
    // polynomial CDF as the oracle, so only roundings remain).
    run(&engine, (&s, &k, &t), Array::into_f32, 2e-5)?;
    run(&engine, (&s, &k, &t), Array::into_f64, 1e-12)?;

    // The loop a user would write, in f32, on one thread.
    let start = Instant::now();
    let (mut c, mut p) = (vec![0f32; n], vec![0f32; n]);
    for i in 0..n {
        (c[i], p[i]) = black_scholes::price_f32(s[i], k[i], t[i], R, V);
    }
    let serial = start.elapsed().as_secs_f64();
    std::hint::black_box((c, p));
    println!(
        "serial f32 loop: {:8.2} ms ({:6.1} M options/s)",
        serial * 1e3,
        n as f64 / serial / 1e6
    );
    Ok(())
}
