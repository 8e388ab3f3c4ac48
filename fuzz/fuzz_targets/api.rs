//! `cargo fuzz run api`: drives tandem's public API (every kernel, every
//! element type, Backend::Cpu and Backend::Auto, Backend::Gpu when there is a
//! GPU) with arbitrary lengths, bit patterns and parameters, and checks the
//! results against scalar oracles. See fuzz/README.md.

#![no_main]

use std::any::Any;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tandem::kernels::{ArgMax, ArgMin, Axpy, Binary, Dot, Max, Min, Sum, Unary};
use tandem::{Backend, Buffer, Element, ElementType, Engine, Error};

// ---------------------------------------------------------------- engine

/// One engine for the whole process. GPU off unless `TANDEM_FUZZ_GPU=1`
/// (lavapipe makes every execution slow).
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let gpu = std::env::var("TANDEM_FUZZ_GPU").is_ok_and(|v| v.trim() == "1");
        let e = Engine::builder()
            .gpu(gpu)
            .build()
            .expect("Engine::build must not fail");
        eprintln!("tandem-fuzz engine: {}", e.info().to_string().replace('\n', "; "));
        e
    })
}

// ---------------------------------------------------------------- input

/// Interesting f32 / i32 / u32 bit patterns.
const SPECIALS: &[u32] = &[
    0x0000_0000, // +0.0
    0x8000_0000, // -0.0 / i32::MIN
    0x3f80_0000, // 1.0
    0xbf80_0000, // -1.0
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x7fc0_0000, // qNaN
    0xffc0_0000, // -qNaN
    0x7f80_0001, // sNaN
    0x7fff_ffff, // NaN, max payload / i32::MAX
    0xffff_ffff, // -NaN / -1 / u32::MAX
    0x0000_0001, // smallest subnormal / 1
    0x8000_0001, // -smallest subnormal
    0x007f_ffff, // largest subnormal
    0x0080_0000, // f32::MIN_POSITIVE
    0x7f7f_ffff, // f32::MAX
    0xff7f_ffff, // f32::MIN
    0x42b1_7218, // ~88.72 (exp overflow edge)
    0xc2cf_f1b5, // ~-103.97 (exp underflow edge)
    0x3f00_0000, // 0.5
    0x4000_0000, // 2.0
    0x0000_0002, // 2
    0xffff_fffe, // -2 / u32::MAX - 1
];

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Scalar {
    Special(u8),
    Small(i8),
    Bits(u32),
}

impl Scalar {
    fn bits(self, ty: ElementType) -> u32 {
        match self {
            Scalar::Special(i) => SPECIALS[i as usize % SPECIALS.len()],
            Scalar::Small(v) if ty == ElementType::F32 => (f32::from(v) * 0.25).to_bits(),
            Scalar::Small(v) => i32::from(v) as u32,
            Scalar::Bits(b) => b,
        }
    }
}

/// A length: mostly ≤ 4096 (half of them < 64, for SIMD tails); when `big`
/// hits one byte value, one of the parallel-path sizes up to ~300k.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Len {
    small: u16,
    big: u8,
    pick: u16,
}

/// Where the CPU backend changes path: exp/ln go parallel from 2^14
/// elements, integer div from 2^15, other maps and reductions from 2^18.
const BIG_BASES: &[usize] = &[1 << 14, 1 << 15, 1 << 16, 1 << 18, 300_000];

impl Len {
    fn get(self, big_allowed: &mut bool) -> usize {
        if self.big == 0xA5 && *big_allowed {
            *big_allowed = false; // at most one big input per execution
            let p = usize::from(self.pick);
            if p & 1 == 0 {
                let base = BIG_BASES[(p >> 1) % BIG_BASES.len()];
                (base + (p >> 4) % 129).saturating_sub(64)
            } else {
                4097 + (p >> 1) * (300_000 - 4097) / 32767
            }
        } else if self.small < 0x8000 {
            usize::from(self.small % 64)
        } else {
            usize::from(self.small) % 4097
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Gen {
    Fill(Scalar),
    /// The given values, repeated.
    Cycle(Vec<Scalar>),
    /// PRNG values; `specials`/256 of them from [`SPECIALS`].
    Mixed { seed: u64, specials: u8, mode: u8 },
    Ramp { start: Scalar, step: i32 },
}

impl Gen {
    fn bits(&self, ty: ElementType, n: usize) -> Vec<u32> {
        match self {
            Gen::Fill(s) => vec![s.bits(ty); n],
            Gen::Cycle(v) if v.is_empty() => vec![0; n],
            Gen::Cycle(v) => v.iter().cycle().take(n).map(|s| s.bits(ty)).collect(),
            Gen::Ramp { start, step } => {
                let s = start.bits(ty);
                (0..n)
                    .map(|i| {
                        if ty == ElementType::F32 {
                            (f32::from_bits(s) + (*step as f32) * 0.125 * i as f32).to_bits()
                        } else {
                            s.wrapping_add((*step as u32).wrapping_mul(i as u32))
                        }
                    })
                    .collect()
            }
            Gen::Mixed {
                seed,
                specials,
                mode,
            } => {
                let mut s = *seed | 1;
                (0..n)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        let r = (s >> 16) as u32;
                        if (r & 0xff) < u32::from(*specials) {
                            return SPECIALS[(r >> 8) as usize % SPECIALS.len()];
                        }
                        let r = (s >> 24) as u32;
                        match (mode % 3, ty) {
                            (0, _) => r,
                            (1, ElementType::F32) => ((r as i32) as f32 * 2f32.powi(-24)).to_bits(),
                            (1, _) => r >> 12,
                            (_, ElementType::F32) => ((r % 17) as f32 - 8.0).to_bits(),
                            _ => (r % 17).wrapping_sub(8),
                        }
                    })
                    .collect()
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Src {
    Fresh(Len, Gen),
    /// Second input only: fresh, with the first input's length.
    SameLen(Gen),
    /// Second input only: the first input's buffer itself (aliasing).
    SameBuffer,
    /// The previous map output of this element type (device-resident when
    /// it was computed on a GPU).
    Prev,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ty {
    F32,
    I32,
    U32,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Op {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Ln,
    Scale(Scalar),
    Add,
    Sub,
    Mul,
    Div,
    Minimum,
    Maximum,
    Axpy(Scalar),
    Sum,
    Dot,
    Min,
    Max,
    ArgMin,
    ArgMax,
}

impl Op {
    fn two_inputs(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Minimum | Op::Maximum | Op::Axpy(_) | Op::Dot
        )
    }

    fn unary(self) -> Option<Unary> {
        Some(match self {
            Op::Neg => Unary::Neg,
            Op::Abs => Unary::Abs,
            Op::Sqrt => Unary::Sqrt,
            Op::Exp => Unary::Exp,
            Op::Ln => Unary::Ln,
            Op::Scale(k) => Unary::Scale(f32::from_bits(k.bits(ElementType::F32))),
            _ => return None,
        })
    }

    fn binary(self) -> Option<Binary> {
        Some(match self {
            Op::Add => Binary::Add,
            Op::Sub => Binary::Sub,
            Op::Mul => Binary::Mul,
            Op::Div => Binary::Div,
            Op::Minimum => Binary::Min,
            Op::Maximum => Binary::Max,
            _ => return None,
        })
    }

    /// Unary ops that are not defined for this element type.
    fn unsupported(self, ty: ElementType) -> bool {
        match self {
            Op::Neg => ty == ElementType::U32,
            Op::Sqrt | Op::Exp | Op::Ln | Op::Scale(_) => ty != ElementType::F32,
            _ => false,
        }
    }

    fn float_sum(self, ty: ElementType) -> bool {
        ty == ElementType::F32 && matches!(self, Op::Sum | Op::Dot)
    }
}

#[derive(Arbitrary, Debug)]
struct Step {
    ty: Ty,
    op: Op,
    x: Src,
    y: Src,
}

#[derive(Arbitrary, Debug)]
struct Input {
    steps: Vec<Step>,
}

// ---------------------------------------------------------------- elements

trait El: Element + Copy {
    fn bits(self) -> u32;
    fn of_bits(b: u32) -> Self;
}

impl El for f32 {
    fn bits(self) -> u32 {
        self.to_bits()
    }
    fn of_bits(b: u32) -> Self {
        f32::from_bits(b)
    }
}

impl El for i32 {
    fn bits(self) -> u32 {
        self as u32
    }
    fn of_bits(b: u32) -> Self {
        b as i32
    }
}

impl El for u32 {
    fn bits(self) -> u32 {
        self
    }
    fn of_bits(b: u32) -> Self {
        b
    }
}

fn f(b: u32) -> f32 {
    f32::from_bits(b)
}

// ---------------------------------------------------------------- running

/// What a kernel returned, as raw bits.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Buf(Vec<u32>),
    Scalar(u32),
    Opt(Option<u32>),
    Arg(Option<(usize, u32)>),
}

fn bits<T: El>(v: &[T]) -> Vec<u32> {
    v.iter().map(|x| x.bits()).collect()
}

fn as_f32<T: El>(b: &Buffer<T>) -> &Buffer<f32> {
    (b as &dyn Any)
        .downcast_ref::<Buffer<f32>>()
        .expect("axpy is only run on f32")
}

/// Runs `op`; `None` when it has no impl for `T` (axpy on integers).
fn exec<T: El>(
    e: &Engine,
    op: Op,
    x: &Buffer<T>,
    y: &Buffer<T>,
) -> Option<(Result<Out, Error>, Option<Buffer<T>>)> {
    let buf = |r: Result<Buffer<T>, Error>| match r {
        Ok(b) => {
            let v = b.to_vec().expect("reading a kernel's output must work");
            (Ok(Out::Buf(bits(&v))), Some(b))
        }
        Err(err) => (Err(err), None),
    };
    Some(if let Some(u) = op.unary() {
        buf(e.run(&u, x))
    } else if let Some(b) = op.binary() {
        buf(e.run(&b, (x, y)))
    } else {
        let r = match op {
            Op::Axpy(a) => {
                if T::TYPE != ElementType::F32 {
                    return None;
                }
                let a = f(a.bits(ElementType::F32));
                let r = e.run(&Axpy { a }, (as_f32(x), as_f32(y)));
                let r = r.map(|b| {
                    let v = b.to_vec().expect("reading axpy's output must work");
                    let v: Vec<T> = v.iter().map(|x| T::of_bits(x.to_bits())).collect();
                    Buffer::from(v)
                });
                return Some(buf(r));
            }
            Op::Sum => e.run(&Sum, x).map(|s: T| Out::Scalar(s.bits())),
            Op::Dot => e.run(&Dot, (x, y)).map(|s: T| Out::Scalar(s.bits())),
            Op::Min => e.run(&Min, x).map(|s: Option<T>| Out::Opt(s.map(El::bits))),
            Op::Max => e.run(&Max, x).map(|s: Option<T>| Out::Opt(s.map(El::bits))),
            Op::ArgMin => e
                .run(&ArgMin, x)
                .map(|s: Option<(usize, T)>| Out::Arg(s.map(|(i, v)| (i, v.bits())))),
            Op::ArgMax => e
                .run(&ArgMax, x)
                .map(|s: Option<(usize, T)>| Out::Arg(s.map(|(i, v)| (i, v.bits())))),
            _ => unreachable!(),
        };
        (r, None)
    })
}

#[derive(Default)]
struct Prev {
    f: Option<Buffer<f32>>,
    i: Option<Buffer<i32>>,
    u: Option<Buffer<u32>>,
}

trait PrevSlot: El {
    fn slot(p: &mut Prev) -> &mut Option<Buffer<Self>>;
}
impl PrevSlot for f32 {
    fn slot(p: &mut Prev) -> &mut Option<Buffer<f32>> {
        &mut p.f
    }
}
impl PrevSlot for i32 {
    fn slot(p: &mut Prev) -> &mut Option<Buffer<i32>> {
        &mut p.i
    }
}
impl PrevSlot for u32 {
    fn slot(p: &mut Prev) -> &mut Option<Buffer<u32>> {
        &mut p.u
    }
}

fn step<T: PrevSlot>(st: &Step, prev: &mut Prev, big: &mut bool) {
    let e = engine();
    let ty = T::TYPE;
    let fresh = |len: &Len, g: &Gen, big: &mut bool| {
        let n = len.get(big);
        Buffer::from(g.bits(ty, n).into_iter().map(T::of_bits).collect::<Vec<T>>())
    };
    let x: Buffer<T> = match &st.x {
        Src::Fresh(l, g) => fresh(l, g, big),
        Src::Prev => T::slot(prev).clone().unwrap_or_else(|| Buffer::from(Vec::new())),
        // No first input to follow: eight elements, or none.
        Src::SameLen(g) => Buffer::from(g.bits(ty, 8).into_iter().map(T::of_bits).collect::<Vec<T>>()),
        Src::SameBuffer => Buffer::from(Vec::new()),
    };
    let y: Buffer<T> = match &st.y {
        Src::Fresh(l, g) => fresh(l, g, big),
        Src::SameLen(g) => {
            Buffer::from(g.bits(ty, x.len()).into_iter().map(T::of_bits).collect::<Vec<T>>())
        }
        Src::SameBuffer => x.clone(),
        Src::Prev => T::slot(prev).clone().unwrap_or_else(|| x.clone()),
    };
    // Host views for the oracles (downloads device-resident inputs).
    let xs = bits(&x.to_vec().expect("host copy of x"));
    let ys = bits(&y.to_vec().expect("host copy of y"));
    assert_eq!(xs.len(), x.len());
    assert_eq!(ys.len(), y.len());

    let has_gpu = e.has_gpu();
    let mut cpu_out: Option<Out> = None;
    for backend in [Backend::Cpu, Backend::Auto, Backend::Gpu] {
        let h = e.on(backend);
        let Some((r, out_buf)) = exec::<T>(&h, st.op, &x, &y) else {
            return;
        };
        let ctx = || format!("{:?} {ty} on {backend} (n={}, m={})", st.op, xs.len(), ys.len());
        if backend == Backend::Gpu && !has_gpu {
            assert!(
                matches!(r, Err(Error::NoGpu { .. })),
                "{}: Backend::Gpu without a GPU must be NoGpu, got {r:?}",
                ctx()
            );
            continue;
        }
        let mismatch = st.op.two_inputs() && xs.len() != ys.len();
        let out = match r {
            Err(Error::LengthMismatch { left, right, .. }) if mismatch => {
                assert_eq!((left, right), (xs.len(), ys.len()), "{}: lengths in error", ctx());
                continue;
            }
            Err(Error::Unsupported { .. }) if st.op.unsupported(ty) => continue,
            Err(err) => panic!("{}: unexpected error {err:?}", ctx()),
            Ok(out) => {
                assert!(!mismatch, "{}: mismatched lengths accepted: {out:?}", ctx());
                assert!(!st.op.unsupported(ty), "{}: undefined op accepted", ctx());
                out
            }
        };
        if let Out::Buf(v) = &out {
            assert_eq!(v.len(), xs.len(), "{}: output length", ctx());
        }
        // Could this result have come from the GPU?
        let maybe_gpu = backend == Backend::Gpu || (backend == Backend::Auto && has_gpu);
        check_oracle(st.op, ty, &xs, &ys, &out, maybe_gpu, &ctx);
        match &cpu_out {
            None => cpu_out = Some(out.clone()),
            Some(c) => compare_backends(st.op, ty, &xs, &ys, c, &out, maybe_gpu, &ctx),
        }
        if let Some(b) = out_buf {
            *T::slot(prev) = Some(b);
        }
    }
}

fuzz_target!(|input: Input| {
    let mut prev = Prev::default();
    let mut big = true;
    for st in input.steps.iter().take(6) {
        match st.ty {
            Ty::F32 => step::<f32>(st, &mut prev, &mut big),
            Ty::I32 => step::<i32>(st, &mut prev, &mut big),
            Ty::U32 => step::<u32>(st, &mut prev, &mut big),
        }
    }
});

// ---------------------------------------------------------------- oracles

/// Distance in representable f32 values (-0.0 and +0.0 are 1 apart).
fn ulps(a: f32, b: f32) -> u64 {
    fn key(x: f32) -> i64 {
        let b = x.to_bits();
        if b & 0x8000_0000 != 0 {
            -i64::from(b & 0x7fff_ffff) - 1
        } else {
            i64::from(b)
        }
    }
    (key(a) - key(b)).unsigned_abs()
}

/// Same bits, or both NaN.
fn same_f(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn subnormal(x: f32) -> bool {
    x != 0.0 && x.abs() < f32::MIN_POSITIVE
}

/// NaN-ignoring pick with -0.0 < +0.0 (`Binary::Min`/`Max`).
fn pick(a: f32, b: f32, max: bool) -> f32 {
    if b.is_nan() {
        return a;
    }
    if a.is_nan() {
        return b;
    }
    let better = if max { b.total_cmp(&a).is_gt() } else { b.total_cmp(&a).is_lt() };
    if better { b } else { a }
}

fn int_map(op: Op, ty: ElementType, a: u32, b: u32) -> u32 {
    let signed = ty == ElementType::I32;
    let (sa, sb) = (a as i32, b as i32);
    match op {
        Op::Neg => (sa.wrapping_neg()) as u32,
        Op::Abs if signed => sa.wrapping_abs() as u32,
        Op::Abs => a,
        Op::Add => a.wrapping_add(b),
        Op::Sub => a.wrapping_sub(b),
        Op::Mul => a.wrapping_mul(b),
        Op::Div if signed => sa.checked_div(sb).unwrap_or(sa) as u32,
        Op::Div => a.checked_div(b).unwrap_or(a),
        Op::Minimum if signed => sa.min(sb) as u32,
        Op::Minimum => a.min(b),
        Op::Maximum if signed => sa.max(sb) as u32,
        Op::Maximum => a.max(b),
        _ => unreachable!("{op:?}"),
    }
}

/// Checks one f32 map element computed on the CPU against the scalar
/// definition; `Err` says why not.
fn float_map_ok(op: Op, x: f32, y: f32, got: f32) -> Result<(), String> {
    let ok = match op {
        Op::Neg => same_f(got, f32::from_bits(x.to_bits() ^ 0x8000_0000)),
        Op::Abs => same_f(got, x.abs()),
        Op::Scale(k) => same_f(got, x * f(k.bits(ElementType::F32))),
        Op::Add => same_f(got, x + y),
        Op::Sub => same_f(got, x - y),
        Op::Mul => same_f(got, x * y),
        Op::Div => {
            let w = x / y;
            same_f(got, w) || (!w.is_nan() && !got.is_nan() && ulps(got, w) <= 3)
        }
        Op::Minimum => same_f(got, pick(x, y, false)),
        Op::Maximum => same_f(got, pick(x, y, true)),
        Op::Axpy(a) => {
            let a = f(a.bits(ElementType::F32));
            same_f(got, x.mul_add(a, y)) || same_f(got, a * x + y)
        }
        Op::Sqrt => {
            let w = (x as f64).sqrt() as f32;
            if w.is_nan() || w.is_infinite() || w == 0.0 {
                same_f(got, w)
            } else {
                !got.is_nan() && ulps(got, w) <= 3
            }
        }
        Op::Exp => {
            let w = (x as f64).exp() as f32;
            if x.is_nan() || x.is_infinite() {
                same_f(got, w)
            } else if w.is_infinite() {
                got == f32::INFINITY
            } else if w < f32::MIN_POSITIVE {
                (0.0..=f32::MIN_POSITIVE).contains(&got)
            } else {
                !got.is_nan() && ulps(got, w) <= 3 + (2.0 * x.abs()) as u64
            }
        }
        Op::Ln => {
            let w = (x as f64).ln() as f32;
            if x.is_nan() || x < 0.0 || x == 0.0 || x.is_infinite() {
                // ln(-x) = NaN, ln(±0) = -inf, ln(inf) = inf, ln(NaN) = NaN.
                same_f(got, w)
            } else if (0.5..=2.0).contains(&x) {
                (f64::from(got) - f64::from(w)).abs() <= 2f64.powi(-21)
            } else {
                !got.is_nan() && ulps(got, w) <= 3
            }
        }
        _ => unreachable!("{op:?}"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "x={x:e} ({:#010x}) y={y:e} ({:#010x}) got={got:e} ({:#010x})",
            x.to_bits(),
            y.to_bits(),
            got.to_bits()
        ))
    }
}

/// Scalar scan: first index of the smallest/largest non-NaN, -0.0 < +0.0.
fn scan_arg(ty: ElementType, x: &[u32], max: bool) -> Option<(usize, u32)> {
    if x.is_empty() {
        return None;
    }
    let mut best: Option<(usize, u32)> = None;
    for (i, &b) in x.iter().enumerate() {
        let better = |c: u32| -> bool {
            let ord = match ty {
                ElementType::F32 => f(b).total_cmp(&f(c)),
                ElementType::I32 => (b as i32).cmp(&(c as i32)),
                _ => b.cmp(&c),
            };
            if max { ord.is_gt() } else { ord.is_lt() }
        };
        if ty == ElementType::F32 && f(b).is_nan() {
            continue;
        }
        match best {
            Some((_, c)) if !better(c) => {}
            _ => best = Some((i, b)),
        }
    }
    // All NaN: a NaN at index 0.
    Some(best.unwrap_or((0, f32::NAN.to_bits())))
}

/// Checks a float sum or dot against an exact (f64) sum of its terms.
fn check_float_sum(terms: &[f64], got: f32, gpu: bool, ctx: &dyn Fn() -> String) {
    let n = terms.len();
    if terms.iter().any(|t| t.is_nan()) {
        assert!(got.is_nan(), "{}: a NaN term must give NaN, got {got:e}", ctx());
        return;
    }
    let finite: Vec<f64> = terms.iter().copied().filter(|t| t.is_finite()).collect();
    let abs: f64 = finite.iter().map(|t| t.abs()).sum();
    if abs > f64::from(f32::MAX) / 4.0 {
        return; // partial sums may overflow: no cheap oracle
    }
    let pos_inf = terms.iter().any(|&t| t == f64::INFINITY);
    let neg_inf = terms.iter().any(|&t| t == f64::NEG_INFINITY);
    match (pos_inf, neg_inf) {
        (true, true) => assert!(got.is_nan(), "{}: inf + -inf must be NaN, got {got:e}", ctx()),
        (true, false) => assert_eq!(got, f32::INFINITY, "{}: sum with +inf", ctx()),
        (false, true) => assert_eq!(got, f32::NEG_INFINITY, "{}: sum with -inf", ctx()),
        (false, false) => {
            let exact: f64 = finite.iter().sum();
            // Leaves accumulate up to ~40 terms serially, then a log2(n) tree.
            let depth = 64.0 + (n.max(2) as f64).log2();
            let u = 2f64.powi(-24);
            let slack = n as f64 * if gpu { 2.0 * f64::from(f32::MIN_POSITIVE) } else { 2f64.powi(-149) };
            let err = (f64::from(got) - exact).abs();
            assert!(
                got.is_finite() && err <= depth * u * abs + slack,
                "{}: float sum {got:e} vs exact {exact:e} (Σ|t| = {abs:e}, err {err:e})",
                ctx()
            );
        }
    }
}

fn check_oracle(op: Op, ty: ElementType, xs: &[u32], ys: &[u32], out: &Out, gpu: bool, ctx: &dyn Fn() -> String) {
    match (op, out) {
        (Op::Sum | Op::Dot, Out::Scalar(got)) => {
            let terms = || {
                xs.iter()
                    .enumerate()
                    .map(move |(i, &a)| (a, if op == Op::Dot { Some(ys[i]) } else { None }))
            };
            if ty == ElementType::F32 {
                let t: Vec<f64> = terms()
                    .map(|(a, b)| f64::from(f(a)) * b.map_or(1.0, |b| f64::from(f(b))))
                    .collect();
                check_float_sum(&t, f(*got), gpu, ctx);
            } else {
                let want = terms().fold(0u32, |acc, (a, b)| acc.wrapping_add(a.wrapping_mul(b.unwrap_or(1))));
                assert_eq!(*got, want, "{}: wrapping integer sum", ctx());
            }
        }
        (Op::Min | Op::Max, Out::Opt(got)) => {
            let want = scan_arg(ty, xs, op == Op::Max).map(|(_, v)| v);
            check_extreme(ty, *got, want, ctx);
        }
        (Op::ArgMin | Op::ArgMax, Out::Arg(got)) => {
            let want = scan_arg(ty, xs, op == Op::ArgMax);
            assert_eq!(got.map(|g| g.0), want.map(|w| w.0), "{}: index", ctx());
            check_extreme(ty, got.map(|g| g.1), want.map(|w| w.1), ctx);
        }
        (_, Out::Buf(got)) if gpu => {
            // Checked against the CPU result in compare_backends instead.
            let _ = got;
        }
        (_, Out::Buf(got)) => {
            for i in 0..got.len() {
                let y = ys.get(i).copied().unwrap_or(0);
                if ty == ElementType::F32 {
                    if let Err(why) = float_map_ok(op, f(xs[i]), f(y), f(got[i])) {
                        panic!("{}: element {i}: {why}", ctx());
                    }
                } else {
                    assert_eq!(got[i], int_map(op, ty, xs[i], y), "{}: element {i} (x={:#x}, y={y:#x})", ctx(), xs[i]);
                }
            }
        }
        (op, out) => panic!("{}: {op:?} returned {out:?}", ctx()),
    }
}

fn check_extreme(ty: ElementType, got: Option<u32>, want: Option<u32>, ctx: &dyn Fn() -> String) {
    match (got, want) {
        (Some(g), Some(w)) if ty == ElementType::F32 && f(w).is_nan() => {
            assert!(f(g).is_nan(), "{}: all-NaN input must give NaN, got {:e}", ctx(), f(g))
        }
        _ => assert_eq!(got, want, "{}: extreme value (bits)", ctx()),
    }
}

/// Cpu vs another backend: identical, except float sums/dots (order), and,
/// when the other result may come from a GPU, float maps (device accuracy
/// and subnormal flushing, as documented in `kernels::map`).
#[allow(clippy::too_many_arguments)]
fn compare_backends(
    op: Op,
    ty: ElementType,
    xs: &[u32],
    ys: &[u32],
    cpu: &Out,
    other: &Out,
    gpu: bool,
    ctx: &dyn Fn() -> String,
) {
    if op.float_sum(ty) && gpu {
        return; // each checked against the exact sum
    }
    match (cpu, other) {
        (Out::Buf(c), Out::Buf(o)) if gpu && ty == ElementType::F32 => {
            for i in 0..c.len() {
                let (x, y) = (f(xs[i]), f(ys.get(i).copied().unwrap_or(0)));
                let (c, o) = (f(c[i]), f(o[i]));
                if same_f(c, o) || [x, y, c, o].iter().any(|&v| subnormal(v)) {
                    continue;
                }
                let tol = match op {
                    Op::Sqrt | Op::Div | Op::Ln => 6,
                    Op::Exp => 6 + (4.0 * x.abs()) as u64,
                    Op::Axpy(_) => 4,
                    _ => 0,
                };
                let near_one = op == Op::Ln && (0.5..=2.0).contains(&x) && (c - o).abs() <= 2f32.powi(-20);
                assert!(
                    near_one || (!c.is_nan() && !o.is_nan() && ulps(c, o) <= tol),
                    "{}: element {i}: x={x:e} y={y:e} cpu={c:e} other={o:e}",
                    ctx()
                );
            }
        }
        _ => assert_eq!(cpu, other, "{}: differs from Backend::Cpu", ctx()),
    }
}
