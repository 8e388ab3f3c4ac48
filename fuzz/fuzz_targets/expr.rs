//! `cargo fuzz run expr`: expression text and trees. Arbitrary text goes
//! through `Expr::parse` (with arrays `x`, `y` (f32), `d` (f64), `n` (i32),
//! `m` (u32) and scalars `a` (f32), `s` (f64), `k` (i32)); whatever parses
//! is made into a `Map`
//! and a `MapReduce::sum`, run on short arrays on the CPU and, with
//! `TANDEM_FUZZ_GPU=1`, the GPU. Checks that nothing panics, that every
//! failure is an `InvalidArgument` (bad text, types) or a documented GPU
//! refusal, that `Display` text parses back to the same text, and that the
//! GPU's integer results equal the CPU's bit for bit.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tandem::expr::{Expr, Vars};
use tandem::kernels::{Args, Array, Map, MapReduce};
use tandem::{Backend, Buffer, Engine, Error};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let gpu = std::env::var("TANDEM_FUZZ_GPU").is_ok_and(|v| v.trim() == "1");
        Engine::builder().gpu(gpu).build().expect("engine")
    })
}

fn vars() -> Vars {
    Vars::new()
        .array::<f32>("x")
        .array::<f32>("y")
        .array::<f64>("d")
        .array::<i32>("n")
        .array::<u32>("m")
        .scalar::<f32>("a")
        .scalar::<f64>("s")
        .scalar::<i32>("k")
}

fn bits(a: Array) -> Vec<u32> {
    match a {
        Array::F32(b) => b.to_vec().unwrap().iter().map(|v| v.to_bits()).collect(),
        Array::I32(b) => b.to_vec().unwrap().iter().map(|&v| v as u32).collect(),
        Array::U32(b) => b.to_vec().unwrap(),
        Array::F64(b) => b
            .to_vec()
            .unwrap()
            .iter()
            .flat_map(|v| {
                let b = v.to_bits();
                [b as u32, (b >> 32) as u32]
            })
            .collect(),
        _ => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let e = match Expr::parse(text, &vars()) {
        Ok(e) => e,
        Err(Error::InvalidArgument { .. }) => return,
        Err(other) => panic!("parse of {text:?}: not an argument error: {other:?}"),
    };
    let shown = e.to_string();
    let again = Expr::parse(&shown, &vars()).expect("Display text parses back");
    assert_eq!(again.to_string(), shown, "Display round trip of {text:?}");

    let map = match Map::new(e.clone()) {
        Ok(m) => m,
        Err(Error::InvalidArgument { .. }) => return,
        Err(other) => panic!("{text:?}: not an argument error: {other:?}"),
    };
    let len = data.len() % 300;
    let x = Buffer::from(
        (0..len)
            .map(|i| i as f32 * 0.37 - 20.0)
            .collect::<Vec<f32>>(),
    );
    let y = Buffer::from((0..len).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<f32>>());
    let d = Buffer::from((0..len).map(|i| i as f64 * 0.1 - 7.0).collect::<Vec<f64>>());
    let n = Buffer::from(
        (0..len)
            .map(|i| (i as i32 - 150) * 1_000_003)
            .collect::<Vec<i32>>(),
    );
    let m = Buffer::from(
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761))
            .collect::<Vec<u32>>(),
    );
    let mut args = Args::new();
    for name in map.arrays() {
        args = match name {
            "x" => args.array("x", &x),
            "y" => args.array("y", &y),
            "d" => args.array("d", &d),
            "n" => args.array("n", &n),
            _ => args.array("m", &m),
        };
    }
    for name in map.scalars() {
        args = match name {
            "a" => args.scalar("a", 1.5f32),
            "s" => args.scalar("s", 0.1f64),
            _ => args.scalar("k", -3i32),
        };
    }
    let run = |backend: Backend| match engine().on(backend).run(&map, &args) {
        Ok(out) => Some(out.0.into_iter().flat_map(bits).collect::<Vec<u32>>()),
        // No arrays: nothing sizes the output.
        Err(Error::InvalidArgument { .. }) if map.arrays().is_empty() => None,
        Err(Error::NoGpu { .. } | Error::Unsupported { .. }) if backend == Backend::Gpu => None,
        Err(other) => panic!("{text:?} on {backend}: {other:?}"),
    };
    let cpu = run(Backend::Cpu);
    if engine().has_gpu() {
        let gpu = run(Backend::Gpu);
        // Integer results are exact on both backends.
        let integer = !shown.contains('.') && map.arrays().iter().all(|a| *a == "n" || *a == "m");
        if integer && cpu.is_some() && gpu.is_some() {
            assert_eq!(cpu, gpu, "{text:?}: GPU and CPU differ");
        }
    }
    if let Ok(sum) = MapReduce::sum(e) {
        let _ = engine().on(Backend::Cpu).run(&sum, &args);
    }
});
