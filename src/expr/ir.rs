//! Type checking and lowering: an [`Expr`] tree becomes a [`Program`], a
//! list of typed instructions in dependency order with common
//! subexpressions merged, which both backends compile from.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Expr, Lit, Node, Op, invalid};
use crate::buffer::ElementType;
use crate::error::Result;

/// Deepest expression tree accepted (parsed or built): deeper ones are an
/// error, not a stack overflow.
pub(crate) const MAX_DEPTH: usize = 256;

/// Most instructions in one program.
pub(crate) const MAX_INSTS: usize = 4096;

/// A value's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Ty {
    F32,
    I32,
    U32,
    /// f64: 64-bit registers on the CPU; on the GPU, shaders that need
    /// `SHADER_F64`.
    F64,
    Bool,
}

impl Ty {
    pub(crate) fn of(t: ElementType) -> Ty {
        match t {
            ElementType::F32 => Ty::F32,
            ElementType::I32 => Ty::I32,
            ElementType::U32 => Ty::U32,
            ElementType::F64 => Ty::F64,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::F32 => "f32",
            Ty::I32 => "i32",
            Ty::U32 => "u32",
            Ty::F64 => "f64",
            Ty::Bool => "bool",
        }
    }
}

/// What an instruction computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Element `i` of array input `k`.
    Input(u16),
    /// Scalar parameter `k`.
    Scalar(u16),
    /// A constant's bits (a 32-bit type's in the low word).
    Const(u64),
    /// `op` of the values named (the first `op.arity()` are used).
    Op(Op, [u32; 3]),
    /// A conversion from type `from`.
    Cast(Ty, u32),
}

/// One typed instruction: value `k` of a program is `insts[k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Inst {
    pub(crate) ty: Ty,
    pub(crate) kind: Kind,
}

/// A checked, lowered expression (or several, sharing subexpressions).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Program {
    pub(crate) insts: Vec<Inst>,
    /// Array inputs by name (sorted), with their element types.
    pub(crate) arrays: Vec<(Arc<str>, Ty)>,
    /// Scalar parameters by name (sorted), with their types.
    pub(crate) scalars: Vec<(Arc<str>, Ty)>,
    /// The values computed, one per expression (never bool: a bool result
    /// is cast to u32 0/1).
    pub(crate) outputs: Vec<u32>,
}

impl Program {
    /// Checks and lowers `exprs`, which must use each name with one type.
    pub(crate) fn new(exprs: &[Expr]) -> Result<Program> {
        let mut names: HashMap<Arc<str>, (bool, Ty)> = HashMap::new();
        for e in exprs {
            collect(e, &mut names, 0)?;
        }
        let mut arrays: Vec<(Arc<str>, Ty)> = Vec::new();
        let mut scalars: Vec<(Arc<str>, Ty)> = Vec::new();
        for (name, (array, ty)) in names {
            if array {
                arrays.push((name, ty));
            } else {
                scalars.push((name, ty));
            }
        }
        arrays.sort();
        scalars.sort();
        let most = super::cpu::MAX_ARRAYS;
        if arrays.len() > most || exprs.len() > most {
            return Err(invalid(format!(
                "{} arrays and {} outputs: an expression kernel takes at most {most} of each",
                arrays.len(),
                exprs.len()
            )));
        }
        let mut b = Builder {
            insts: Vec::new(),
            seen: HashMap::new(),
            arrays: &arrays,
            scalars: &scalars,
        };
        let mut outputs = Vec::new();
        for e in exprs {
            let ty = resolve(natural(e, 0)?);
            let mut v = b.lower(e, ty, 0)?;
            if ty == Ty::Bool {
                v = b.push(Ty::U32, Kind::Cast(Ty::Bool, v))?;
            }
            outputs.push(v);
        }
        Ok(Program {
            insts: b.insts,
            arrays,
            scalars,
            outputs,
        })
    }

    /// Whether any value is f64 (the CPU then needs 64-bit registers, the
    /// GPU f64 shaders).
    pub(crate) fn has_f64(&self) -> bool {
        self.insts.iter().any(|i| i.ty == Ty::F64)
    }

    /// The type of value `v`.
    pub(crate) fn ty(&self, v: u32) -> Ty {
        self.insts[v as usize].ty
    }

    /// Weighted operations per element (a cheap op is 1, `exp` 16, `sin`
    /// 20, ...): the expression kernels' `Work::flops` per element.
    pub(crate) fn weight(&self) -> u64 {
        self.insts
            .iter()
            .map(|i| match i.kind {
                Kind::Input(_) | Kind::Scalar(_) | Kind::Const(_) => 0,
                Kind::Cast(..) => 1,
                Kind::Op(op, _) => match op {
                    Op::Fma => 2,
                    Op::Div | Op::Sqrt if i.ty == Ty::F32 => 2,
                    Op::Div | Op::Rem => 8,
                    Op::Exp | Op::Ln => 16,
                    Op::Sin | Op::Cos | Op::Tanh => 20,
                    Op::Pow => 32,
                    _ => 1,
                },
            })
            .sum::<u64>()
            .max(1)
    }
}

/// An expression's type before its literals are placed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Nat {
    T(Ty),
    AbsInt,
    AbsFloat,
}

fn resolve(n: Nat) -> Ty {
    match n {
        Nat::T(t) => t,
        Nat::AbsInt => Ty::I32,
        Nat::AbsFloat => Ty::F32,
    }
}

fn show(n: Nat) -> &'static str {
    match n {
        Nat::T(t) => t.name(),
        Nat::AbsInt => "integer literal",
        Nat::AbsFloat => "float literal",
    }
}

fn at(e: &Expr) -> String {
    e.column.map_or(String::new(), |c| format!("column {c}: "))
}

fn too_deep(e: &Expr) -> crate::error::Error {
    invalid(format!(
        "{}expression nests deeper than {MAX_DEPTH} levels",
        at(e)
    ))
}

fn collect(e: &Expr, names: &mut HashMap<Arc<str>, (bool, Ty)>, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(too_deep(e));
    }
    let (name, array, ty) = match &*e.node {
        Node::Input(n, t) => (n, true, *t),
        Node::Scalar(n, t) => (n, false, *t),
        Node::Lit(_) => return Ok(()),
        Node::Cast(_, a) => return collect(a, names, depth + 1),
        Node::Call(_, args) => {
            return args.iter().try_for_each(|a| collect(a, names, depth + 1));
        }
    };
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(invalid(format!(
            "`{name}` is not a valid name (letters, digits and `_`)"
        )));
    }
    match names.get(name) {
        Some(&(a, t)) if (a, t) != (array, ty) => {
            let kind = |a: bool| if a { "array" } else { "scalar" };
            Err(invalid(format!(
                "`{name}` is used as a {} {} and as a {} {}",
                t.name(),
                kind(a),
                ty.name(),
                kind(array)
            )))
        }
        _ => {
            names.insert(name.clone(), (array, ty));
            Ok(())
        }
    }
}

fn unify(e: &Expr, op: Op, a: Nat, b: Nat) -> Result<Nat> {
    let numeric = |t: Ty| t != Ty::Bool;
    let r = match (a, b) {
        (Nat::T(x), Nat::T(y)) if x == y => Some(Nat::T(x)),
        (Nat::T(x), Nat::AbsInt) | (Nat::AbsInt, Nat::T(x)) if numeric(x) => Some(Nat::T(x)),
        (Nat::T(t @ (Ty::F32 | Ty::F64)), Nat::AbsFloat)
        | (Nat::AbsFloat, Nat::T(t @ (Ty::F32 | Ty::F64))) => Some(Nat::T(t)),
        (Nat::AbsInt, Nat::AbsInt) => Some(Nat::AbsInt),
        (Nat::AbsInt | Nat::AbsFloat, Nat::AbsInt | Nat::AbsFloat) => Some(Nat::AbsFloat),
        _ => None,
    };
    r.ok_or_else(|| {
        invalid(format!(
            "{}type mismatch: `{}` of {} and {} (no implicit conversions: cast one, as in f32(n))",
            at(e),
            op.symbol(),
            show(a),
            show(b)
        ))
    })
}

fn natural(e: &Expr, depth: usize) -> Result<Nat> {
    if depth > MAX_DEPTH {
        return Err(too_deep(e));
    }
    Ok(match &*e.node {
        Node::Input(_, t) | Node::Scalar(_, t) => Nat::T(*t),
        Node::Lit(Lit::Int(_)) => Nat::AbsInt,
        Node::Lit(Lit::Float(_)) => Nat::AbsFloat,
        Node::Lit(Lit::Typed(t, _)) => Nat::T(*t),
        Node::Cast(t, a) => {
            natural(a, depth + 1)?;
            Nat::T(*t)
        }
        Node::Call(op, args) => {
            if args.len() != op.arity() {
                return Err(invalid(format!(
                    "{}`{}` takes {} argument(s), got {}",
                    at(e),
                    op.symbol(),
                    op.arity(),
                    args.len()
                )));
            }
            let n: Vec<Nat> = args
                .iter()
                .map(|a| natural(a, depth + 1))
                .collect::<Result<_>>()?;
            match op {
                Op::Lt
                | Op::Le
                | Op::Gt
                | Op::Ge
                | Op::Eq
                | Op::Ne
                | Op::And
                | Op::Or
                | Op::Not => Nat::T(Ty::Bool),
                Op::Select => unify(e, *op, n[1], n[2])?,
                Op::Neg | Op::Abs => n[0],
                Op::Fma => {
                    let ab = unify(e, *op, n[0], n[1])?;
                    unify(e, *op, ab, n[2])?
                }
                Op::Sqrt
                | Op::Exp
                | Op::Ln
                | Op::Sin
                | Op::Cos
                | Op::Tanh
                | Op::Floor
                | Op::Ceil
                | Op::Round => unify(e, *op, n[0], Nat::AbsFloat)?,
                Op::Pow => {
                    let ab = unify(e, *op, n[0], n[1])?;
                    unify(e, *op, ab, Nat::AbsFloat)?
                }
                Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem | Op::Min | Op::Max => {
                    unify(e, *op, n[0], n[1])?
                }
            }
        }
    })
}

struct Builder<'a> {
    insts: Vec<Inst>,
    seen: HashMap<Inst, u32>,
    arrays: &'a [(Arc<str>, Ty)],
    scalars: &'a [(Arc<str>, Ty)],
}

impl Builder<'_> {
    fn push(&mut self, ty: Ty, kind: Kind) -> Result<u32> {
        let inst = Inst { ty, kind };
        if let Some(&v) = self.seen.get(&inst) {
            return Ok(v);
        }
        if self.insts.len() >= MAX_INSTS {
            return Err(invalid(format!(
                "expression has more than {MAX_INSTS} distinct operations"
            )));
        }
        let v = self.insts.len() as u32;
        self.insts.push(inst);
        self.seen.insert(inst, v);
        Ok(v)
    }

    fn index(list: &[(Arc<str>, Ty)], name: &str) -> u16 {
        list.iter()
            .position(|(n, _)| &**n == name)
            .expect("collected") as u16
    }

    /// Lowers `e` as a value of type `want` (its resolved type).
    fn lower(&mut self, e: &Expr, want: Ty, depth: usize) -> Result<u32> {
        if depth > MAX_DEPTH {
            return Err(too_deep(e));
        }
        match &*e.node {
            Node::Input(name, t) => {
                debug_assert_eq!(*t, want);
                let k = Self::index(self.arrays, name);
                self.push(*t, Kind::Input(k))
            }
            Node::Scalar(name, t) => {
                let k = Self::index(self.scalars, name);
                self.push(*t, Kind::Scalar(k))
            }
            Node::Lit(lit) => {
                let bits = literal(e, *lit, want)?;
                self.push(want, Kind::Const(bits))
            }
            Node::Cast(to, a) => {
                if *to == Ty::Bool {
                    return Err(invalid(format!(
                        "{}no cast to bool: compare instead (x != 0)",
                        at(e)
                    )));
                }
                // `f64(0.1)`: a literal cast to f64 is that f64, not the
                // f32 it would be alone, cast.
                let from = match natural(a, depth + 1)? {
                    Nat::AbsInt | Nat::AbsFloat if *to == Ty::F64 => Ty::F64,
                    n => resolve(n),
                };
                let v = self.lower(a, from, depth + 1)?;
                if from == *to {
                    return Ok(v);
                }
                self.push(*to, Kind::Cast(from, v))
            }
            Node::Call(op, args) => {
                let operand = match op {
                    Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne => {
                        let t = resolve(unify(
                            e,
                            *op,
                            natural(&args[0], depth + 1)?,
                            natural(&args[1], depth + 1)?,
                        )?);
                        if t == Ty::Bool && !matches!(op, Op::Eq | Op::Ne) {
                            return Err(invalid(format!(
                                "{}`{}` does not order bools",
                                at(e),
                                op.symbol()
                            )));
                        }
                        t
                    }
                    Op::And | Op::Or | Op::Not => Ty::Bool,
                    _ => want,
                };
                let bad = match op {
                    Op::And | Op::Or | Op::Not => (0..args.len())
                        .map(|i| natural(&args[i], depth + 1))
                        .collect::<Result<Vec<_>>>()?
                        .into_iter()
                        .any(|n| n != Nat::T(Ty::Bool)),
                    Op::Select => natural(&args[0], depth + 1)? != Nat::T(Ty::Bool),
                    Op::Neg => want == Ty::U32 || want == Ty::Bool,
                    Op::Add
                    | Op::Sub
                    | Op::Mul
                    | Op::Div
                    | Op::Rem
                    | Op::Min
                    | Op::Max
                    | Op::Abs
                    | Op::Fma => want == Ty::Bool,
                    _ => false,
                };
                if bad {
                    let what = match op {
                        Op::And | Op::Or | Op::Not => "takes bools".to_string(),
                        Op::Select => "takes a bool condition first".to_string(),
                        _ => format!("is not defined on {}", want.name()),
                    };
                    return Err(invalid(format!("{}`{}` {what}", at(e), op.symbol())));
                }
                let mut ids = [0u32; 3];
                for (i, a) in args.iter().enumerate() {
                    let t = match op {
                        Op::Select if i == 0 => Ty::Bool,
                        _ => operand,
                    };
                    ids[i] = self.lower(a, t, depth + 1)?;
                }
                self.push(want, Kind::Op(*op, ids))
            }
        }
    }
}

/// A literal's bits as type `t` (a 32-bit type's in the low word).
fn literal(e: &Expr, lit: Lit, t: Ty) -> Result<u64> {
    let out_of_range = |v: &dyn std::fmt::Display| {
        invalid(format!("{}literal {v} does not fit {}", at(e), t.name()))
    };
    Ok(match (lit, t) {
        (Lit::Typed(lt, bits), _) if lt == t => bits,
        (Lit::Int(v), Ty::F32) => u64::from((v as f32).to_bits()),
        (Lit::Int(v), Ty::F64) => (v as f64).to_bits(),
        (Lit::Int(v), Ty::I32) => u64::from(i32::try_from(v).map_err(|_| out_of_range(&v))? as u32),
        (Lit::Int(v), Ty::U32) => u64::from(u32::try_from(v).map_err(|_| out_of_range(&v))?),
        (Lit::Float(v), Ty::F32) => u64::from((v as f32).to_bits()),
        (Lit::Float(v), Ty::F64) => v.to_bits(),
        (lit, t) => {
            return Err(invalid(format!(
                "{}literal {lit:?} cannot be {}",
                at(e),
                t.name()
            )));
        }
    })
}
