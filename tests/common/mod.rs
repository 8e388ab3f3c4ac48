//! Helpers shared by the integration tests: engines, the GPU skip/require
//! rule, deterministic data, and float comparisons.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub(crate) mod oracle;

use std::sync::OnceLock;

use tandem::kernels::{ArgMax, ArgMin, Binary, Max, Min};
use tandem::{Backend, Buffer, Element, Engine};

/// Sizes every kernel is checked at: empty, one, odd, workgroup ± 1, a
/// prime near 10^5, and one past 65,535 workgroups of 256 (the largest
/// single-dimension dispatch), which forces a 2-D dispatch.
pub(crate) const SIZES: &[usize] = &[0, 1, 7, 255, 256, 257, 99_991, 65_535 * 256 + 1];

/// The binary operations whose float results are exact (all but `Div`).
pub(crate) const EXACT_BINARY: [Binary; 5] = [
    Binary::Add,
    Binary::Sub,
    Binary::Mul,
    Binary::Min,
    Binary::Max,
];

/// One engine per test binary, shared by all its tests (and threads).
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().expect("engine"))
}

/// The engine forced onto `backend`, or `None` (with a printed notice) when
/// that backend is the GPU and there is none. With `TANDEM_REQUIRE_GPU=1` a
/// missing GPU fails the test instead.
pub(crate) fn on(backend: Backend) -> Option<Engine> {
    let e = engine();
    if backend == Backend::Gpu && !e.has_gpu() {
        let why = e.info().gpu_unavailable.unwrap_or_default();
        if require_gpu() {
            panic!("TANDEM_REQUIRE_GPU=1 but there is no GPU: {why}");
        }
        eprintln!(
            "skipping GPU part: no GPU ({why}); `apt-get install mesa-vulkan-drivers` gives a software one"
        );
        return None;
    }
    Some(e.on(backend))
}

/// A fresh engine of its own forced onto the GPU (for tests that read its
/// counters, which a shared engine's other users would disturb), or `None`
/// under the same skip rule as [`on`].
pub(crate) fn own_gpu_engine() -> Option<Engine> {
    on(Backend::Gpu)?;
    Some(Engine::builder().build().expect("engine").on(Backend::Gpu))
}

/// Whether `TANDEM_REQUIRE_GPU=1` is set.
pub(crate) fn require_gpu() -> bool {
    std::env::var("TANDEM_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The backends to check: CPU always, GPU when present.
pub(crate) fn backends() -> Vec<(Backend, Engine)> {
    [Backend::Cpu, Backend::Gpu]
        .into_iter()
        .filter_map(|b| on(b).map(|e| (b, e)))
        .collect()
}

/// Deterministic xorshift stream.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 32) as u32
    }
    /// Uniform in [lo, hi).
    pub(crate) fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }
    pub(crate) fn f32s(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32(lo, hi)).collect()
    }
    pub(crate) fn i32s(&mut self, n: usize) -> Vec<i32> {
        (0..n).map(|_| self.next_u32() as i32).collect()
    }
    pub(crate) fn u32s(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.next_u32()).collect()
    }
    /// Values from a small set, so ties are common.
    pub(crate) fn small_i32s(&mut self, n: usize, span: u32) -> Vec<i32> {
        (0..n)
            .map(|_| (self.next_u32() % span) as i32 - (span / 2) as i32)
            .collect()
    }
}

/// Distance in units of last place between two floats (0 for equal, and
/// for two NaNs).
pub(crate) fn ulps(a: f32, b: f32) -> u32 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return u32::MAX;
    }
    let key = |x: f32| {
        let b = x.to_bits();
        if b & 0x8000_0000 != 0 {
            !b
        } else {
            b | 0x8000_0000
        }
    };
    // -0.0 and +0.0 are one key apart; count them as equal.
    if a == 0.0 && b == 0.0 {
        return 0;
    }
    key(a).abs_diff(key(b))
}

/// Asserts `got` is within `tol(i)` ULP of `want` everywhere, treating two
/// values below `f32::MIN_POSITIVE` in magnitude as equal (GPUs may flush
/// subnormals).
pub(crate) fn assert_ulps(what: &str, got: &[f32], want: &[f32], tol: impl Fn(usize) -> u32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.abs() < f32::MIN_POSITIVE && w.abs() < f32::MIN_POSITIVE {
            continue;
        }
        let d = ulps(g, w);
        assert!(
            d <= tol(i),
            "{what}: element {i}: got {g:e}, want {w:e} ({d} ulp > {})",
            tol(i)
        );
    }
}

/// Bitwise equality for float slices (so -0.0 and NaN payloads count).
pub(crate) fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: got {g:e} ({:#x}), want {w:e} ({:#x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Bytes of one GPU binding in [`small_binding_engine`]: 16,384 f32, so
/// inputs of a few hundred thousand elements cross several bindings.
pub(crate) const SMALL_BINDING: u64 = 64 * 1024;

/// A fresh `Auto` engine whose GPU bindings hold [`SMALL_BINDING`] bytes,
/// or `None` under the skip rule of [`on`] when there is no GPU.
pub(crate) fn small_binding_engine() -> Option<Engine> {
    on(Backend::Gpu)?;
    Some(
        Engine::builder()
            .gpu_chunk_bytes(SMALL_BINDING)
            .build()
            .expect("engine"),
    )
}

/// `cpu`, `gpu`, and `gpu 64 KiB` (an engine with [`SMALL_BINDING`]
/// bindings, so the larger test sizes cross bindings), named for failure
/// messages; the GPU ones under the skip rule of [`on`].
pub(crate) fn named_engines() -> &'static [(&'static str, Engine)] {
    static ALL: OnceLock<Vec<(&'static str, Engine)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<(&'static str, Engine)> = backends()
            .into_iter()
            .map(|(b, e)| (if b == Backend::Gpu { "gpu" } else { "cpu" }, e))
            .collect();
        if let Some(small) = small_binding_engine() {
            v.push(("gpu 64 KiB", small.on(Backend::Gpu)));
        }
        v
    })
}

/// `Min` and `ArgMin` of `x` on `e` (with `max`, `Max` and `ArgMax`).
pub(crate) fn extremes<T: Element>(
    e: &Engine,
    x: &Buffer<T>,
    max: bool,
) -> (Option<T>, Option<(usize, T)>) {
    if max {
        (e.run(&Max, x).unwrap(), e.run(&ArgMax, x).unwrap())
    } else {
        (e.run(&Min, x).unwrap(), e.run(&ArgMin, x).unwrap())
    }
}
