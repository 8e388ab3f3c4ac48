//! Expression cases: a fused `Σ a·x + y` against the two-kernel chain it
//! replaces, and Black–Scholes prices (two outputs of one map) over arrays
//! of options. Each wraps its expression kernel in a kernel over plain
//! buffers, named as the expression kernel so the calibrated curves apply.

use rayon::prelude::*;
use tandem::expr::Expr;
use tandem::kernels::{Args, Axpy, Map, MapReduce, Outputs, Reduced, Sum};
use tandem::{Buffer, Cpu, Gpu, Kernel, Work};

#[path = "../common/black_scholes.rs"]
mod black_scholes;

use crate::cases::{Case, ELEMENTS, SEED_X, SEED_Y, bench, random_f32};

const A: f32 = 2.5;
const R: f32 = 0.02;
const V: f32 = 0.30;

type Two<'a> = (&'a Buffer<f32>, &'a Buffer<f32>);

/// `MapReduce::sum(a·x + y)` over `(x, y)`.
#[derive(Clone)]
struct FusedSum(MapReduce);

impl<'a> Kernel<Two<'a>> for FusedSum {
    type Out = Option<Reduced>;
    fn name(&self) -> &'static str {
        Kernel::<&Args<'_>>::name(&self.0)
    }
    fn work(&self, (x, y): &Two<'a>) -> Work {
        self.0
            .work(&&Args::new().array("x", x).array("y", y).scalar("a", A))
    }
    fn run_cpu(&self, cpu: &Cpu, (x, y): Two<'a>) -> tandem::Result<Option<Reduced>> {
        self.0
            .run_cpu(cpu, &Args::new().array("x", x).array("y", y).scalar("a", A))
    }
    fn run_gpu(&self, gpu: &Gpu, (x, y): Two<'a>) -> tandem::Result<Option<Reduced>> {
        self.0
            .run_gpu(gpu, &Args::new().array("x", x).array("y", y).scalar("a", A))
    }
}

/// `Axpy` then `Sum`: the chain the fused kernel replaces (its
/// intermediate array written and read back).
#[derive(Clone, Copy)]
struct Chain;

impl<'a> Kernel<Two<'a>> for Chain {
    type Out = f32;
    fn name(&self) -> &'static str {
        "axpy_then_sum"
    }
    fn work(&self, (x, y): &Two<'a>) -> Work {
        let mut w = Kernel::<Two<'_>>::work(&Axpy { a: A }, &(*x, *y));
        w.bytes_read += w.bytes_written;
        w
    }
    fn run_cpu(&self, cpu: &Cpu, input: Two<'a>) -> tandem::Result<f32> {
        let z = Axpy { a: A }.run_cpu(cpu, input)?;
        Sum.run_cpu(cpu, &z)
    }
    fn run_gpu(&self, gpu: &Gpu, input: Two<'a>) -> tandem::Result<f32> {
        let z = Axpy { a: A }.run_gpu(gpu, input)?;
        Sum.run_gpu(gpu, &z)
    }
}

/// `Map(a·x + y)` over `(x, y)`: the expression twin of `Axpy`.
#[derive(Clone)]
struct MapAxpy(Map);

impl<'a> Kernel<Two<'a>> for MapAxpy {
    type Out = Outputs;
    fn name(&self) -> &'static str {
        Kernel::<&Args<'_>>::name(&self.0)
    }
    fn work(&self, (x, y): &Two<'a>) -> Work {
        self.0
            .work(&&Args::new().array("x", x).array("y", y).scalar("a", A))
    }
    fn run_cpu(&self, cpu: &Cpu, (x, y): Two<'a>) -> tandem::Result<Outputs> {
        self.0
            .run_cpu(cpu, &Args::new().array("x", x).array("y", y).scalar("a", A))
    }
    fn run_gpu(&self, gpu: &Gpu, (x, y): Two<'a>) -> tandem::Result<Outputs> {
        self.0
            .run_gpu(gpu, &Args::new().array("x", x).array("y", y).scalar("a", A))
    }
}

type Three<'a> = (&'a Buffer<f32>, (&'a Buffer<f32>, &'a Buffer<f32>));

/// Black–Scholes call and put over `(s, (k, t))`.
#[derive(Clone)]
struct BlackScholes(Map);

fn bs_args<'a>((s, (k, t)): &Three<'a>) -> Args<'a> {
    Args::new()
        .array("s", *s)
        .array("k", *k)
        .array("t", *t)
        .scalar("r", R)
        .scalar("v", V)
}

impl<'a> Kernel<Three<'a>> for BlackScholes {
    type Out = Outputs;
    fn name(&self) -> &'static str {
        Kernel::<&Args<'_>>::name(&self.0)
    }
    fn work(&self, input: &Three<'a>) -> Work {
        self.0.work(&&bs_args(input))
    }
    fn run_cpu(&self, cpu: &Cpu, input: Three<'a>) -> tandem::Result<Outputs> {
        self.0.run_cpu(cpu, &bs_args(&input))
    }
    fn run_gpu(&self, gpu: &Gpu, input: Three<'a>) -> tandem::Result<Outputs> {
        self.0.run_gpu(gpu, &bs_args(&input))
    }
}

/// The fused `Σ a·x + y`, the serial loop a user writes, and the rayon
/// idiom as the Rust peer.
pub(crate) fn fused_sum() -> Case {
    let x = Expr::input::<f32>("x");
    let k = FusedSum(
        MapReduce::sum(Expr::scalar::<f32>("a") * x + Expr::input::<f32>("y")).expect("expression"),
    );
    Case::new("fused_sum", "expr", ELEMENTS, move |n| {
        let data = (random_f32(n, SEED_X), random_f32(n, SEED_Y));
        bench(data, k.clone(), |(x, y): &(Vec<f32>, Vec<f32>)| {
            x.iter().zip(y).map(|(a, b)| A * a + b).sum::<f32>()
        })
        .peer("rayon", |(x, y): &(Vec<f32>, Vec<f32>)| {
            x.par_iter().zip(y).map(|(a, b)| A * a + b).sum::<f32>()
        })
    })
    .software_gpu_max(1 << 22)
}

/// `Map(a·x + y)`, same serial loop as the `axpy` row: the `cpu` column of
/// the two rows is the expression-versus-hand-written-kernel figure.
pub(crate) fn map_axpy() -> Case {
    let x = Expr::input::<f32>("x");
    let k = MapAxpy(
        Map::new(Expr::scalar::<f32>("a") * x + Expr::input::<f32>("y")).expect("expression"),
    );
    Case::new("map_axpy", "expr", ELEMENTS, move |n| {
        let data = (random_f32(n, SEED_X), random_f32(n, SEED_Y));
        let mut out = Vec::new();
        bench(data, k.clone(), move |(x, y): &(Vec<f32>, Vec<f32>)| {
            out.clear();
            out.extend(x.iter().zip(y).map(|(a, b)| A * a + b));
            out.last().copied()
        })
    })
    .software_gpu_max(1 << 22)
}

/// The two-kernel chain, same serial loop and peer as [`fused_sum`]: the
/// `cpu` column of the two rows is the fused-versus-chain figure.
pub(crate) fn chain() -> Case {
    Case::new("axpy_then_sum", "expr", ELEMENTS, move |n| {
        let data = (random_f32(n, SEED_X), random_f32(n, SEED_Y));
        bench(data, Chain, |(x, y): &(Vec<f32>, Vec<f32>)| {
            x.iter().zip(y).map(|(a, b)| A * a + b).sum::<f32>()
        })
    })
    .software_gpu_max(1 << 22)
}

/// Black–Scholes prices against the plain f32 loop over the same formula
/// (`f32::exp`, `ln`, `sqrt` and the same CDF polynomial), rayon as peer.
pub(crate) fn black_scholes_case() -> Case {
    let (call, put) = black_scholes::prices();
    let k = BlackScholes(Map::with_outputs(vec![call, put]).expect("expression"));
    Case::new("black_scholes", "expr", ELEMENTS, move |n| {
        let (s, kk, t) = black_scholes::options(n, SEED_X);
        let (mut c, mut p) = (Vec::new(), Vec::new());
        bench(
            (s, (kk, t)),
            k.clone(),
            move |(s, (k, t)): &(Vec<f32>, (Vec<f32>, Vec<f32>))| {
                c.resize(s.len(), 0.0);
                p.resize(s.len(), 0.0);
                for i in 0..s.len() {
                    let (cc, pp) = black_scholes::price_f32(s[i], k[i], t[i], R, V);
                    c[i] = cc;
                    p[i] = pp;
                }
                c.last().copied()
            },
        )
        .peer("rayon", |(s, (k, t)): &(Vec<f32>, (Vec<f32>, Vec<f32>))| {
            let v: Vec<(f32, f32)> = s
                .par_iter()
                .zip(k)
                .zip(t)
                .map(|((&s, &k), &t)| black_scholes::price_f32(s, k, t, R, V))
                .collect();
            v.last().copied()
        })
    })
    .software_gpu_max(1 << 20)
}
