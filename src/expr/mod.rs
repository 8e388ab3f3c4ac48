//! Expressions: write an elementwise kernel once, run it on either backend.
//!
//! An [`Expr`] is a tree over named array inputs, named scalar parameters
//! and constants. Built from Rust operators or parsed from text, it becomes
//! a kernel: [`Map`](crate::kernels::Map) (one pass, one output per
//! expression) or [`MapReduce`](crate::kernels::MapReduce) (a fused `sum`,
//! `min`, `max`, `argmin` or `argmax` of the expression, with no
//! intermediate array). Each kernel is compiled once, to WGSL for the GPU
//! (validated with naga, cached per engine by the expression's structure:
//! scalars are uniforms, so new scalar values compile nothing) and to a
//! register program over SIMD lanes for the CPU, evaluated in blocks that
//! stay in L1. The engine's dispatcher picks the backend per call, like for
//! every other kernel.
//!
//! ```
//! use tandem::expr::Expr;
//! use tandem::kernels::{Args, Map, MapReduce};
//! use tandem::{Buffer, Engine};
//!
//! # fn main() -> tandem::Result<()> {
//! let engine = Engine::builder().gpu(false).build()?;
//! let (x, y) = (Expr::input::<f32>("x"), Expr::input::<f32>("y"));
//! let a = Expr::scalar::<f32>("a");
//! let e = &a * &x + y.sqrt();
//!
//! let xs = Buffer::from(vec![1.0f32, 2.0, 3.0]);
//! let ys = Buffer::from(vec![4.0f32, 9.0, 16.0]);
//! let args = Args::new().array("x", &xs).array("y", &ys).scalar("a", 3.0f32);
//! let out = engine.run(&Map::new(e.clone())?, &args)?.into_f32()?;
//! assert_eq!(out.to_vec()?, vec![5.0, 9.0, 13.0]);
//!
//! // The same from text, reduced in one pass: 5 + 9 + 13.
//! let vars = tandem::expr::Vars::new().scalar::<f32>("a").array::<f32>("x").array::<f32>("y");
//! let e = Expr::parse("a * x + sqrt(y)", &vars)?;
//! let total = engine.run(&MapReduce::sum(e)?, &args)?.expect("a sum always has a value");
//! assert_eq!(total.value.as_f64(), 27.0);
//! # Ok(())
//! # }
//! ```
//!
//! # Types
//!
//! Values are `f32`, `f64`, `i32`, `u32` or `bool` (comparisons). Operands
//! of a binary operation must have the same type: there are no implicit
//! conversions, only casts (`f32(n)`, `f64(x)`, [`Expr::cast`]). A literal
//! takes the type of the operand it meets: `2 * x` is an f32 `2.0` when `x`
//! is f32, the f64 nearest 2.0 when it is f64, a u32 `2` when it is u32;
//! `2.5 * n` with an integer `n` is a type error. A literal alone is i32
//! (no dot) or f32; `f64(0.1)` is the f64 nearest 0.1 (not an f32 widened).
//! From Rust, [`Expr::literal`] is such a float literal (so one builder
//! serves f32 and f64, as [`normal_cdf`] does); `2.5f32 * x` is a typed
//! f32 constant.
//!
//! f64 values run in 64-bit registers on the CPU (8 lanes with AVX-512)
//! and, on a GPU with `SHADER_F64`, in f64 shaders; without it the GPU
//! declines the kernel and `Auto` runs it on the CPU (the kernels say so
//! through [`Kernel::computes_f64`](crate::Kernel::computes_f64), widened
//! 32-bit inputs included). A kernel with an f64 value is named
//! `map_expr_f64` / `reduce_expr_f64`, with curves of its own.
//!
//! # Operations and their semantics (both backends)
//!
//! | | |
//! |---|---|
//! | `+ - *` | integers wrap |
//! | `/` | integer division by zero returns the dividend, `i32::MIN / -1` is `i32::MIN` (as WGSL defines); floats are IEEE |
//! | `%` | integers: truncated remainder, `x % 0 = x`, `i32::MIN % -1 = 0`; floats: `x - y·trunc(x / y)` |
//! | `neg`, `abs` | integers wrap (`abs(i32::MIN) = i32::MIN`); `neg` of u32 is a type error |
//! | `min`, `max` | floats: a NaN operand is ignored (NaN only if both are), `-0.0 < +0.0` |
//! | `fma(a, b, c)` | `a·b + c`; fused on the CPU, fused or not on a GPU (a rounding's difference) |
//! | `sqrt`, `exp`, `ln` | floats; NaN for a negative `sqrt`/`ln`, `ln(0) = -inf`, as the map kernels (f64 `exp`/`ln` within 4 ε) |
//! | `pow(x, y)` | floats, `exp(y·ln x)`: NaN for `x < 0`; `pow(0, y)` is 0 (`y > 0`), 1 (`y = 0`), `+inf` (`y < 0`) |
//! | `sin`, `cos` | f32: accuracy is the device's (absolute 2^-11 on `[-π, π]` on GPUs); far outside it, argument reduction differs between backends. f64: within 4 ε on both backends for `|x| < 2^20·π/2` (fdlibm's polynomials on the GPU); past 2^52 the GPU gives NaN |
//! | `tanh` | `±1` beyond `|x| > 9` (f32) or `|x| > 19` (f64) |
//! | `floor`, `ceil`, `round` | floats; `round` is to nearest, ties to even |
//! | `< <= > >= == !=` | bool; a NaN compares false except under `!=` |
//! | `select(c, a, b)` | `a` where `c`, else `b` |
//! | `&&`, `\|\|`, `!` | on bools |
//! | casts | float → int saturates and NaN → 0 (as Rust's `as`); f64 → f32 rounds to nearest; i32 ↔ u32 keep the bits; bool → 0 or 1 |
//!
//! A NaN an operation creates may differ in sign and payload between
//! backends. Transcendentals, `/` and `sqrt` are within a few ULP of the
//! correctly rounded result on each backend, not bit-identical across them.

mod ir;
mod parse;

pub(crate) mod cpu;
pub(crate) mod wgsl;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::buffer::{Element, ElementType};
use crate::error::{Error, Result};

pub(crate) use ir::{Program, Ty};

/// The name errors about expressions carry as their kernel.
pub(crate) const KERNEL: &str = "expr";

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument {
        kernel: KERNEL,
        message: message.into(),
    }
}

/// An operation of an expression node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Neg,
    Abs,
    Min,
    Max,
    Fma,
    Sqrt,
    Exp,
    Ln,
    Pow,
    Sin,
    Cos,
    Tanh,
    Floor,
    Ceil,
    Round,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Not,
    Select,
}

impl Op {
    /// The name in text (functions) or the operator's symbol.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Rem => "%",
            Op::Neg => "neg",
            Op::Abs => "abs",
            Op::Min => "min",
            Op::Max => "max",
            Op::Fma => "fma",
            Op::Sqrt => "sqrt",
            Op::Exp => "exp",
            Op::Ln => "ln",
            Op::Pow => "pow",
            Op::Sin => "sin",
            Op::Cos => "cos",
            Op::Tanh => "tanh",
            Op::Floor => "floor",
            Op::Ceil => "ceil",
            Op::Round => "round",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::And => "&&",
            Op::Or => "||",
            Op::Not => "!",
            Op::Select => "select",
        }
    }

    /// Operands the operation takes.
    pub(crate) fn arity(self) -> usize {
        match self {
            Op::Neg
            | Op::Abs
            | Op::Sqrt
            | Op::Exp
            | Op::Ln
            | Op::Sin
            | Op::Cos
            | Op::Tanh
            | Op::Floor
            | Op::Ceil
            | Op::Round
            | Op::Not => 1,
            Op::Fma | Op::Select => 3,
            _ => 2,
        }
    }

    /// The function of this name in text (`sqrt`, `min`, ...).
    pub(crate) fn function(name: &str) -> Option<Op> {
        Some(match name {
            "neg" => Op::Neg,
            "abs" => Op::Abs,
            "min" => Op::Min,
            "max" => Op::Max,
            "fma" => Op::Fma,
            "sqrt" => Op::Sqrt,
            "exp" => Op::Exp,
            "ln" | "log" => Op::Ln,
            "pow" => Op::Pow,
            "sin" => Op::Sin,
            "cos" => Op::Cos,
            "tanh" => Op::Tanh,
            "floor" => Op::Floor,
            "ceil" => Op::Ceil,
            "round" => Op::Round,
            "select" => Op::Select,
            _ => return None,
        })
    }
}

/// A literal as written: abstract until it meets a typed operand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Lit {
    /// An integer literal (`2`): takes any numeric type.
    Int(i64),
    /// A float literal (`2.5`, `1e-3`): takes a float type.
    Float(f64),
    /// A typed constant (from Rust: `2.5f32 * x`), its bits (a 32-bit
    /// type's in the low word).
    Typed(Ty, u64),
}

#[derive(Debug, PartialEq)]
pub(crate) enum Node {
    Input(Arc<str>, Ty),
    Scalar(Arc<str>, Ty),
    Lit(Lit),
    Call(Op, Vec<Expr>),
    Cast(Ty, Expr),
}

/// An expression over named arrays, named scalars and constants: see the
/// [module docs](self). Cheap to clone (shared nodes).
#[derive(Clone, PartialEq)]
pub struct Expr {
    pub(crate) node: Arc<Node>,
    /// The 1-based column it starts at, when parsed from text (for errors).
    pub(crate) column: Option<usize>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Expr {
    /// Fully parenthesized text that [`Expr::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.node {
            Node::Input(n, _) | Node::Scalar(n, _) => f.write_str(n),
            Node::Lit(Lit::Int(v)) => write!(f, "{v}"),
            Node::Lit(Lit::Float(v)) => write!(f, "{v:?}"),
            Node::Lit(Lit::Typed(t, bits)) => match t {
                Ty::F32 => write!(f, "{:?}", f32::from_bits(*bits as u32)),
                Ty::I32 => write!(f, "i32({})", *bits as i32),
                Ty::U32 => write!(f, "u32({bits})"),
                Ty::F64 => write!(f, "f64({:?})", f64::from_bits(*bits)),
                Ty::Bool => write!(f, "{}", if *bits != 0 { "(0 == 0)" } else { "(0 != 0)" }),
            },
            Node::Cast(t, e) => write!(f, "{}({e})", t.name()),
            Node::Call(op, args) => match (op, args.as_slice()) {
                (Op::Not, [a]) => write!(f, "(!{a})"),
                (op, [a, b]) if !op.symbol().starts_with(char::is_alphabetic) => {
                    write!(f, "({a} {} {b})", op.symbol())
                }
                (op, args) => {
                    write!(f, "{}(", op.symbol())?;
                    for (i, a) in args.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{a}")?;
                    }
                    f.write_str(")")
                }
            },
        }
    }
}

impl Expr {
    fn new(node: Node) -> Expr {
        Expr {
            node: Arc::new(node),
            column: None,
        }
    }

    pub(crate) fn at(mut self, column: usize) -> Expr {
        self.column = Some(column);
        self
    }

    pub(crate) fn call(op: Op, args: Vec<Expr>) -> Expr {
        Expr::new(Node::Call(op, args))
    }

    /// The array input `name`, of element type `T`.
    pub fn input<T: Element>(name: &str) -> Expr {
        Expr::new(Node::Input(name.into(), Ty::of(T::TYPE)))
    }

    /// The scalar parameter `name`, of type `T` (a uniform on the GPU:
    /// changing its value compiles nothing).
    pub fn scalar<T: Element>(name: &str) -> Expr {
        Expr::new(Node::Scalar(name.into(), Ty::of(T::TYPE)))
    }

    /// A float literal: like `2.5` in text, it takes the type of the float
    /// operand it meets (the f32 or the f64 nearest `v`), so one expression
    /// builder serves both float types. Alone it is f32.
    pub fn literal(v: f64) -> Expr {
        Expr::new(Node::Lit(Lit::Float(v)))
    }

    /// A constant of type `T`.
    pub fn constant<T: Element>(value: T) -> Expr {
        let bits = if T::TYPE == crate::ElementType::F64 {
            bytemuck::cast::<T, f64>(value).to_bits()
        } else {
            u64::from(bytemuck::cast::<T, u32>(value))
        };
        Expr::new(Node::Lit(Lit::Typed(Ty::of(T::TYPE), bits)))
    }

    /// Parses `text` with the names in `vars` (see [`Vars`]). Errors name
    /// the column: a syntax error, an unknown name or function, a wrong
    /// number of arguments. Types are checked when a kernel is made.
    ///
    /// Grammar, loosest first: `||`, `&&`, comparisons, `+ -`, `* / %`,
    /// unary `- !`, then calls `f(a, ...)`, casts `f32(e)`, `i32(e)`,
    /// `u32(e)`, names, numbers and parentheses.
    pub fn parse(text: &str, vars: &Vars) -> Result<Expr> {
        parse::parse(text, vars)
    }

    /// This expression converted to element type `T` (see the module docs'
    /// cast rules).
    pub fn cast<T: Element>(&self) -> Expr {
        Expr::new(Node::Cast(Ty::of(T::TYPE), self.clone()))
    }

    fn un(&self, op: Op) -> Expr {
        Expr::call(op, vec![self.clone()])
    }

    fn bin(&self, op: Op, other: impl Into<Expr>) -> Expr {
        Expr::call(op, vec![self.clone(), other.into()])
    }

    /// `|self|`.
    pub fn abs(&self) -> Expr {
        self.un(Op::Abs)
    }
    /// Square root.
    pub fn sqrt(&self) -> Expr {
        self.un(Op::Sqrt)
    }
    /// `e^self`.
    pub fn exp(&self) -> Expr {
        self.un(Op::Exp)
    }
    /// Natural logarithm.
    pub fn ln(&self) -> Expr {
        self.un(Op::Ln)
    }
    /// Sine.
    pub fn sin(&self) -> Expr {
        self.un(Op::Sin)
    }
    /// Cosine.
    pub fn cos(&self) -> Expr {
        self.un(Op::Cos)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Expr {
        self.un(Op::Tanh)
    }
    /// Round down.
    pub fn floor(&self) -> Expr {
        self.un(Op::Floor)
    }
    /// Round up.
    pub fn ceil(&self) -> Expr {
        self.un(Op::Ceil)
    }
    /// Round to nearest, ties to even.
    pub fn round(&self) -> Expr {
        self.un(Op::Round)
    }
    /// `self^y`.
    pub fn pow(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Pow, y)
    }
    /// The smaller (NaN ignored).
    pub fn min(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Min, y)
    }
    /// The larger (NaN ignored).
    pub fn max(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Max, y)
    }
    /// `self·b + c`.
    pub fn fma(&self, b: impl Into<Expr>, c: impl Into<Expr>) -> Expr {
        Expr::call(Op::Fma, vec![self.clone(), b.into(), c.into()])
    }
    /// `self < y`.
    pub fn lt(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Lt, y)
    }
    /// `self <= y`.
    pub fn le(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Le, y)
    }
    /// `self > y`.
    pub fn gt(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Gt, y)
    }
    /// `self >= y`.
    pub fn ge(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Ge, y)
    }
    /// `self == y`.
    pub fn equal(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Eq, y)
    }
    /// `self != y`.
    pub fn not_equal(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Ne, y)
    }
    /// `self && y` (bools).
    pub fn and(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::And, y)
    }
    /// `self || y` (bools).
    pub fn or(&self, y: impl Into<Expr>) -> Expr {
        self.bin(Op::Or, y)
    }
    /// `a` where `self` holds, else `b`.
    pub fn select(&self, a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
        Expr::call(Op::Select, vec![self.clone(), a.into(), b.into()])
    }

    /// Nodes in the tree, counting shared subtrees once per use.
    pub fn size(&self) -> usize {
        match &*self.node {
            Node::Call(_, args) => 1 + args.iter().map(Expr::size).sum::<usize>(),
            Node::Cast(_, e) => 1 + e.size(),
            _ => 1,
        }
    }
}

impl From<&Expr> for Expr {
    fn from(e: &Expr) -> Expr {
        e.clone()
    }
}

macro_rules! literal {
    ($($t:ty),*) => {$(
        impl From<$t> for Expr {
            /// A constant of this Rust type.
            fn from(v: $t) -> Expr {
                Expr::constant(v)
            }
        }
    )*};
}
literal!(f32, u32, f64);

impl From<i32> for Expr {
    /// An integer literal: like `2` in text, it takes the type of the
    /// operand it meets (`x * 2` with an f32 `x` is `x * 2.0`). For an i32
    /// constant, use [`Expr::constant`].
    fn from(v: i32) -> Expr {
        Expr::new(Node::Lit(Lit::Int(i64::from(v))))
    }
}

macro_rules! operators {
    ($($trait:ident $method:ident $op:ident),*) => {$(
        impl<R: Into<Expr>> std::ops::$trait<R> for Expr {
            type Output = Expr;
            fn $method(self, r: R) -> Expr {
                Expr::call(Op::$op, vec![self, r.into()])
            }
        }
        impl<R: Into<Expr>> std::ops::$trait<R> for &Expr {
            type Output = Expr;
            fn $method(self, r: R) -> Expr {
                Expr::call(Op::$op, vec![self.clone(), r.into()])
            }
        }
        impl std::ops::$trait<Expr> for f32 {
            type Output = Expr;
            fn $method(self, r: Expr) -> Expr {
                Expr::call(Op::$op, vec![self.into(), r])
            }
        }
        impl std::ops::$trait<&Expr> for f32 {
            type Output = Expr;
            fn $method(self, r: &Expr) -> Expr {
                Expr::call(Op::$op, vec![self.into(), r.clone()])
            }
        }
    )*};
}
operators!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div, Rem rem Rem);

impl std::ops::Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        self.un(Op::Neg)
    }
}

impl std::ops::Neg for &Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        self.un(Op::Neg)
    }
}

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        self.un(Op::Not)
    }
}

/// The standard normal CDF `Φ(x)` as an expression: the Abramowitz–Stegun
/// polynomial 26.2.17, `1 − φ(x)·(b₁t + … + b₅t⁵)` with `t = 1/(1 + p|x|)`,
/// whose error is below 7.5e-8 (under f32's resolution of values near 1;
/// in f64 the polynomial's error is what remains). Five multiply-adds, one
/// `exp` and a select, in `x`'s float type.
pub fn normal_cdf(x: &Expr) -> Expr {
    let c = Expr::literal;
    let t = c(1.0) / (c(1.0) + c(0.231_641_9) * x.abs());
    let poly = &t
        * (c(0.319_381_530)
            + &t * (c(-0.356_563_782)
                + &t * (c(1.781_477_937) + &t * (c(-1.821_255_978) + &t * c(1.330_274_429)))));
    let pdf = c(0.398_942_280_401_432_7) * (c(-0.5) * x * x).exp();
    let tail = pdf * poly;
    x.ge(c(0.0)).select(c(1.0) - &tail, tail)
}

/// The names an expression's text may use, with their types: arrays (one
/// element per output element) and scalars (one value per call).
#[derive(Clone, Debug, Default)]
pub struct Vars {
    pub(crate) names: BTreeMap<String, (bool, Ty)>,
}

impl Vars {
    /// No names.
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Declares array input `name` of element type `T`.
    pub fn array<T: Element>(self, name: &str) -> Vars {
        self.typed(name, true, T::TYPE)
    }

    /// Declares scalar parameter `name` of type `T`.
    pub fn scalar<T: Element>(self, name: &str) -> Vars {
        self.typed(name, false, T::TYPE)
    }

    /// Declares `name` as an array (`array`) or a scalar, of type `t`: for
    /// bindings that know types at run time (Python).
    pub fn typed(mut self, name: &str, array: bool, t: ElementType) -> Vars {
        self.names.insert(name.to_string(), (array, Ty::of(t)));
        self
    }
}
