//! The CPU evaluator: a [`Program`] compiled once into a register program
//! over blocks of [`BLOCK`] elements. Each instruction runs over a whole
//! block at a time, in SIMD lanes ([`F32`] for floats; integer loops the
//! compiler vectorizes), so the per-instruction dispatch is paid once per
//! 1,024 elements, and a block's registers (4 KiB each) stay in L1. It is not
//! an element-at-a-time interpreter.
//!
//! Inputs are read in place and a map's outputs written in place for whole
//! blocks (a last, partial block goes through padded copies). Registers
//! are allocated at compile time and reused once a value's last
//! use has passed; constants and scalars are splatted into registers of
//! their own once per task. Booleans are lane masks (all ones or zero).
//!
//! Data moves as 32-bit words: an element of a 32-bit type is one word, an
//! f64 two. A register holds [`BLOCK`] elements of the program's widest
//! type (4 KiB, or 8 KiB in a program with an f64 value, of which a 32-bit
//! value touches the first half); every operation runs over exactly
//! [`BLOCK`] elements.

use super::Op;
use super::ir::{Kind, Program, Ty};
use crate::cpu::simd::{
    F32, F64, F64_LANES, LANES, Lanes, extreme_key, extreme_key_f64, f64_from_key, find_key,
    find_key_f64, load_f32, load_f64, store_f32, store_f64,
};
use crate::cpu::{Cpu, PARALLEL_THRESHOLD};
use crate::kernels::map::{
    exp_lanes, exp_lanes_f64, ln_lanes, ln_lanes_f64, pick_lanes, pick_lanes_f64,
};

/// Elements per register.
pub(crate) const BLOCK: usize = 1024;

/// Most arrays in, and most outputs, of one program (the CPU evaluator's
/// per-block tables are fixed arrays of this size).
pub(crate) const MAX_ARRAYS: usize = 32;

/// Most blocks per parallel task (65,536 elements); fewer when that would
/// leave a thread without work ([`Plan::task`]).
const TASK_BLOCKS: usize = 64;

/// Where an operand lives for one block: a register, the input's own
/// memory (a full block is read in place), or an output's (a full block is
/// written in place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Reg(u16),
    In(u16),
    Out(u16),
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Op {
        op: Op,
        ty: Ty,
        dst: Src,
        args: [Src; 3],
    },
    Cast {
        from: Ty,
        to: Ty,
        dst: Src,
        a: Src,
    },
    /// An f32 product and the sum or difference taken with it, in one
    /// pass: `args` are the factors and the other term. The product is
    /// rounded before the sum (never contracted into an fma), so the value
    /// is the two steps'.
    Mad {
        how: Mad,
        /// F32 or F64.
        ty: Ty,
        dst: Src,
        args: [Src; 3],
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mad {
    /// `a * b + c` (either order of the sum: IEEE addition commutes).
    Add,
    /// `a * b - c`.
    Sub,
    /// `c - a * b`.
    RevSub,
}

#[derive(Clone, Copy, Debug)]
enum Splat {
    Const(u64),
    Scalar(u16),
}

/// 32-bit words per element of type `t`.
pub(crate) fn words(t: Ty) -> usize {
    if t == Ty::F64 { 2 } else { 1 }
}

/// A map's output column: 32-bit elements, or f64 (kept as `f64` so the
/// buffer it becomes is aligned for its type).
#[derive(Debug)]
pub(crate) enum Column {
    W32(Vec<u32>),
    F64(Vec<f64>),
}

impl Column {
    fn words_mut(&mut self) -> &mut [u32] {
        match self {
            Column::W32(v) => v,
            Column::F64(v) => bytemuck::cast_slice_mut(v),
        }
    }
}

/// A program compiled for the CPU.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    steps: Vec<Step>,
    regs: usize,
    /// Each array input's words per element.
    inputs: Vec<usize>,
    /// Whether any value is f64: registers and pads are then 64 bits an
    /// element.
    wide: bool,
    splats: Vec<(u16, Ty, Splat)>,
    /// Each output's value and type; outputs a step writes in place have
    /// `Src::Out(j)`, the others (an input or a splat as output, a value
    /// output twice) are copied after the block.
    outputs: Vec<(Src, Ty)>,
    weight: usize,
    /// A reduction's last step when it is f32 arithmetic (`+ - * fma` or
    /// a [`Step::Mad`]) whose result is only summed: a fused sum computes it
    /// lane by lane into the accumulator instead of storing it (one pass
    /// over L1 fewer).
    sum_tail: Option<Tail>,
}

/// The step a fused sum evaluates in its accumulation loop.
#[derive(Clone, Copy, Debug)]
enum Tail {
    /// `+ - *` or `fma` of the operands.
    Op(Op, [Src; 3]),
    /// A [`Step::Mad`].
    Mad(Mad, [Src; 3]),
}

/// A task's registers, plus one spare the instruction being run writes to,
/// and padded copies for a last, partial block: [`BLOCK`] elements of the
/// program's widest type each (`u64` so that an f64 view is aligned).
struct Regs {
    r: Vec<Vec<u64>>,
    spare: Vec<u64>,
    pad_in: Vec<Vec<u64>>,
    pad_out: Vec<Vec<u64>>,
}

/// A register's words.
fn view(r: &[u64]) -> &[u32] {
    bytemuck::cast_slice(r)
}

impl Plan {
    /// Compiles `p`; with `in_place`, steps that compute an output write
    /// it straight into the output (maps); else every value is in a
    /// register or an input (reductions read their value after the block).
    pub(crate) fn new(p: &Program, in_place: bool) -> Plan {
        let n = p.insts.len();
        let used = |k: usize| -> &[u32] {
            match &p.insts[k].kind {
                Kind::Op(op, a) => &a[..op.arity()],
                Kind::Cast(_, a) => std::slice::from_ref(a),
                _ => &[],
            }
        };
        // Last use of each value; outputs live to the end.
        let mut last = vec![0usize; n];
        for k in 0..n {
            for &u in used(k) {
                last[u as usize] = k;
            }
        }
        for &o in &p.outputs {
            last[o as usize] = usize::MAX;
        }
        // The output each value is written to in place (its first).
        let mut out_of: Vec<Option<u16>> = vec![None; n];
        if in_place {
            for (j, &o) in p.outputs.iter().enumerate() {
                let computed = matches!(p.insts[o as usize].kind, Kind::Op(..) | Kind::Cast(..));
                if computed && out_of[o as usize].is_none() {
                    out_of[o as usize] = Some(j as u16);
                }
            }
        }
        let mut src = vec![Src::Reg(u16::MAX); n];
        let mut free: Vec<u16> = Vec::new();
        let mut regs = 0u16;
        let mut fresh = || {
            regs += 1;
            regs - 1
        };
        let (mut steps, mut splats) = (Vec::new(), Vec::new());
        // The instruction the last step computes.
        let mut last_step_of = usize::MAX;
        for (k, inst) in p.insts.iter().enumerate() {
            let dst = match inst.kind {
                Kind::Input(i) => Src::In(i),
                // A splat's register is filled once per task, so it is its
                // own: never taken from, or given back to, the free list.
                Kind::Const(_) | Kind::Scalar(_) => Src::Reg(fresh()),
                _ => match out_of[k] {
                    Some(j) => Src::Out(j),
                    None => Src::Reg(free.pop().unwrap_or_else(&mut fresh)),
                },
            };
            src[k] = dst;
            let r = |v: u32| src[v as usize];
            match inst.kind {
                Kind::Const(bits) => splats.push((reg(dst), inst.ty, Splat::Const(bits))),
                Kind::Scalar(s) => splats.push((reg(dst), inst.ty, Splat::Scalar(s))),
                Kind::Input(_) => {}
                Kind::Cast(from, a) => steps.push(Step::Cast {
                    from,
                    to: inst.ty,
                    dst,
                    a: r(a),
                }),
                Kind::Op(op, a) => {
                    // Comparisons and selects: the operands' type.
                    let ty = if op == Op::Select {
                        p.ty(a[1])
                    } else {
                        p.ty(a[0])
                    };
                    let m = last_step_of;
                    let product = match steps.last() {
                        Some(&Step::Op {
                            op: Op::Mul,
                            ty: pt @ (Ty::F32 | Ty::F64),
                            dst: Src::Reg(_),
                            args: [x, y, _],
                        }) if last.get(m) == Some(&k) && dst != x && dst != y && pt == ty => {
                            Some([x, y])
                        }
                        _ => None,
                    };
                    // A float product used only here, then summed or
                    // subtracted: one pass instead of two (its register is
                    // left unused).
                    let mad = match (product, op, a[0] as usize == m, a[1] as usize == m) {
                        (Some(f), Op::Add, true, false) => Some((Mad::Add, f, a[1])),
                        (Some(f), Op::Add, false, true) => Some((Mad::Add, f, a[0])),
                        (Some(f), Op::Sub, true, false) => Some((Mad::Sub, f, a[1])),
                        (Some(f), Op::Sub, false, true) => Some((Mad::RevSub, f, a[0])),
                        _ => None,
                    };
                    if let Some((how, [x, y], other)) = mad {
                        steps.pop();
                        steps.push(Step::Mad {
                            how,
                            ty,
                            dst,
                            args: [x, y, r(other)],
                        });
                    } else {
                        steps.push(Step::Op {
                            op,
                            ty,
                            dst,
                            args: [r(a[0]), r(a[1]), r(a[2])],
                        });
                    }
                }
            }
            if matches!(inst.kind, Kind::Op(..) | Kind::Cast(..)) {
                last_step_of = k;
            }
            // Registers whose value had its last use here are free again.
            for &u in used(k) {
                let splat = matches!(p.insts[u as usize].kind, Kind::Const(_) | Kind::Scalar(_));
                if let Src::Reg(x) = src[u as usize]
                    && last[u as usize] == k
                    && !splat
                    && !free.contains(&x)
                {
                    free.push(x);
                }
            }
        }
        let outputs: Vec<(Src, Ty)> = p
            .outputs
            .iter()
            .map(|&o| (src[o as usize], p.ty(o)))
            .collect();
        let sum_tail = Self::tail(&steps, outputs.first(), in_place);
        Plan {
            sum_tail,
            steps,
            regs: regs as usize,
            inputs: p.arrays.iter().map(|&(_, t)| words(t)).collect(),
            wide: p.has_f64(),
            splats,
            outputs,
            weight: p.weight() as usize,
        }
    }

    /// The step a fused sum can take over (see [`Plan::sum_tail`]).
    fn tail(steps: &[Step], out: Option<&(Src, Ty)>, in_place: bool) -> Option<Tail> {
        let (step, &(out, out_ty @ (Ty::F32 | Ty::F64))) = (steps.last()?, out?) else {
            return None;
        };
        match *step {
            _ if in_place => None,
            Step::Op {
                op: op @ (Op::Add | Op::Sub | Op::Mul | Op::Fma),
                ty,
                dst,
                args,
            } if dst == out && ty == out_ty => Some(Tail::Op(op, args)),
            Step::Mad { how, dst, args, .. } if dst == out => Some(Tail::Mad(how, args)),
            _ => None,
        }
    }

    /// A task's registers, the splats filled in; `scalars` are the
    /// scalars' bits (a 32-bit type's in the low word).
    fn regs(&self, scalars: &[u64]) -> Regs {
        // u64s per register: BLOCK elements of the widest type.
        let len = if self.wide { BLOCK } else { BLOCK / 2 };
        let mut r = vec![vec![0u64; len]; self.regs];
        for &(dst, ty, s) in &self.splats {
            let bits = match s {
                Splat::Const(b) => b,
                Splat::Scalar(k) => scalars[k as usize],
            };
            let reg = &mut r[dst as usize];
            if ty == Ty::F64 {
                reg.fill(bits);
            } else {
                bytemuck::cast_slice_mut::<u64, u32>(reg)[..BLOCK].fill(bits as u32);
            }
        }
        Regs {
            r,
            spare: vec![0u64; len],
            pad_in: vec![vec![0u64; len]; self.inputs.len()],
            pad_out: vec![vec![0u64; len]; self.outputs.len()],
        }
    }

    /// Runs every step over one block: `ins` and `outs` hold [`BLOCK`]
    /// elements each (a partial block is padded by the caller).
    fn block(
        &self,
        r: &mut [Vec<u64>],
        spare: &mut Vec<u64>,
        ins: &[&[u32]],
        outs: &mut [&mut [u32]],
        fused: bool,
    ) {
        let steps = if fused {
            &self.steps[..self.steps.len() - 1]
        } else {
            &self.steps[..]
        };
        for step in steps {
            let dst = match *step {
                Step::Op { dst, .. } | Step::Cast { dst, .. } | Step::Mad { dst, .. } => dst,
            };
            // Take the destination out, so operands can be borrowed.
            let mut out_slot: &mut [u32] = &mut [];
            match dst {
                Src::Reg(x) => std::mem::swap(spare, &mut r[x as usize]),
                Src::Out(j) => out_slot = std::mem::take(&mut outs[j as usize]),
                Src::In(_) => unreachable!("inputs are never written"),
            }
            {
                let d: &mut [u32] = match dst {
                    Src::Reg(_) => bytemuck::cast_slice_mut(&mut spare[..]),
                    _ => out_slot,
                };
                let get = |s: Src| -> &[u32] {
                    match s {
                        Src::Reg(x) => r.get(x as usize).map_or(&[][..], |v| view(v)),
                        Src::In(k) => ins[k as usize],
                        Src::Out(j) => &outs[j as usize][..],
                    }
                };
                match *step {
                    Step::Op { op, ty, args, .. } => {
                        let [a, b, c] = args.map(get);
                        op_block(op, ty, d, a, b, c);
                    }
                    Step::Cast { from, to, a, .. } => cast_block(from, to, d, get(a)),
                    Step::Mad { how, ty, args, .. } => {
                        let [a, b, c] = args.map(get);
                        mad_block(how, ty, d, a, b, c);
                    }
                }
            }
            match dst {
                Src::Reg(x) => std::mem::swap(spare, &mut r[x as usize]),
                Src::Out(j) => outs[j as usize] = out_slot,
                Src::In(_) => {}
            }
        }
    }

    /// Runs the block of `len` elements at `base`, `outs` the outputs' part
    /// for it (`len` elements each, in words). Returns nothing: results are
    /// in `outs` (maps) or in the registers ([`Plan::value`]).
    fn run_block(
        &self,
        regs: &mut Regs,
        inputs: &[&[u32]],
        base: usize,
        len: usize,
        outs: &mut [&mut [u32]],
        fused: bool,
    ) {
        let Regs {
            r,
            spare,
            pad_in,
            pad_out,
        } = regs;
        let mut ins: [&[u32]; MAX_ARRAYS] = [&[]; MAX_ARRAYS];
        let k = inputs.len();
        if len == BLOCK {
            for ((v, i), &w) in ins.iter_mut().zip(inputs).zip(&self.inputs) {
                *v = &i[base * w..(base + BLOCK) * w];
            }
            self.block(r, spare, &ins[..k], outs, fused);
            self.copy_outputs(r, &ins[..k], outs);
            return;
        }
        for ((p, i), &w) in pad_in.iter_mut().zip(inputs).zip(&self.inputs) {
            let p: &mut [u32] = bytemuck::cast_slice_mut(&mut p[..]);
            p[..len * w].copy_from_slice(&i[base * w..(base + len) * w]);
            p[len * w..].fill(0);
        }
        for (v, p) in ins.iter_mut().zip(pad_in.iter()) {
            *v = view(p);
        }
        let mut pads: [&mut [u32]; MAX_ARRAYS] = std::array::from_fn(|_| &mut [][..]);
        let m = pad_out.len();
        for (v, p) in pads.iter_mut().zip(pad_out.iter_mut()) {
            *v = bytemuck::cast_slice_mut(&mut p[..]);
        }
        self.block(r, spare, &ins[..k], &mut pads[..m], fused);
        self.copy_outputs(r, &ins[..k], &mut pads[..m]);
        for ((o, p), &(_, t)) in outs.iter_mut().zip(&pads[..m]).zip(&self.outputs) {
            let w = len * words(t);
            o[..w].copy_from_slice(&p[..w]);
        }
    }

    /// Fills the outputs no step wrote in place (a whole block each).
    fn copy_outputs(&self, r: &[Vec<u64>], ins: &[&[u32]], outs: &mut [&mut [u32]]) {
        for (j, &(s, t)) in self.outputs.iter().enumerate() {
            if j >= outs.len() || s == Src::Out(j as u16) {
                continue;
            }
            let (head, tail) = outs.split_at_mut(j);
            let from: &[u32] = match s {
                Src::Reg(x) => view(&r[x as usize]),
                Src::In(k) => ins[k as usize],
                Src::Out(o) => &head[o as usize][..],
            };
            let w = BLOCK * words(t);
            tail[0][..w].copy_from_slice(&from[..w]);
        }
    }

    /// Whether `n` elements are worth splitting across threads: from
    /// twice [`PARALLEL_THRESHOLD`], since each thread first makes its own
    /// register file (a 2^16-element reduction of weight 2 measured 5.6 µs
    /// alone and 6.2–6.4 µs shared).
    fn parallel(&self, cpu: &Cpu, n: usize) -> bool {
        n.saturating_mul(self.weight) >= 2 * PARALLEL_THRESHOLD && n > self.task(cpu, n)
    }

    /// Elements per parallel task: a few tasks per thread, whole blocks,
    /// at most [`TASK_BLOCKS`] of them.
    fn task(&self, cpu: &Cpu, n: usize) -> usize {
        let per = n.div_ceil(cpu.threads() * 4).div_ceil(BLOCK) * BLOCK;
        per.clamp(BLOCK, TASK_BLOCKS * BLOCK)
    }

    /// Evaluates every output over `n` elements (each input holds `n`).
    pub(crate) fn map(
        &self,
        cpu: &Cpu,
        inputs: &[&[u32]],
        scalars: &[u64],
        n: usize,
    ) -> Vec<Column> {
        let mut outs: Vec<Column> = self
            .outputs
            .iter()
            .map(|&(_, t)| match t {
                Ty::F64 => Column::F64(crate::cpu::pool::take::<f64>(n)),
                _ => Column::W32(crate::cpu::pool::take::<u32>(n)),
            })
            .collect();
        let widths: Vec<usize> = self.outputs.iter().map(|&(_, t)| words(t)).collect();
        let task = self.task(cpu, n);
        // `len` elements from `base`, `outs` their part of each output.
        let run = |regs: &mut Regs, base: usize, len: usize, outs: &mut [&mut [u32]]| {
            let m = outs.len();
            for off in (0..len).step_by(BLOCK) {
                let l = BLOCK.min(len - off);
                let mut views: [&mut [u32]; MAX_ARRAYS] = std::array::from_fn(|_| &mut [][..]);
                for ((v, o), &w) in views.iter_mut().zip(outs.iter_mut()).zip(&widths) {
                    *v = &mut o[off * w..(off + l) * w];
                }
                self.run_block(regs, inputs, base + off, l, &mut views[..m], false);
            }
        };
        if !self.parallel(cpu, n) {
            let mut regs = self.regs(scalars);
            let mut views: Vec<&mut [u32]> = outs.iter_mut().map(|o| o.words_mut()).collect();
            run(&mut regs, 0, n, &mut views);
            return outs;
        }
        // One list of output chunks per task.
        let tasks = n.div_ceil(task);
        let mut per_task: Vec<Vec<&mut [u32]>> = (0..tasks).map(|_| Vec::new()).collect();
        for (o, &w) in outs.iter_mut().zip(&widths) {
            for (t, c) in o.words_mut().chunks_mut(task * w).enumerate() {
                per_task[t].push(c);
            }
        }
        let per_task: Vec<std::sync::Mutex<Vec<&mut [u32]>>> =
            per_task.into_iter().map(std::sync::Mutex::new).collect();
        cpu.for_each_chunk_init(tasks, &|| self.regs(scalars), &|regs, t| {
            let mut views = per_task[t].lock().unwrap_or_else(|e| e.into_inner());
            let base = t * task;
            run(regs, base, task.min(n - base), &mut views);
        });
        outs
    }

    /// Reduces the first output over `n` elements.
    pub(crate) fn reduce(
        &self,
        cpu: &Cpu,
        inputs: &[&[u32]],
        scalars: &[u64],
        n: usize,
        how: How,
    ) -> Partial {
        let (src, ty) = self.outputs[0];
        let float = matches!(ty, Ty::F32 | Ty::F64);
        let fused = how == How::Sum && float && self.sum_tail.is_some();
        let leaf = |lo: usize, hi: usize| -> Partial {
            let mut regs = self.regs(scalars);
            let mut acc = Partial::identity(how, ty);
            let mut sums = Cascade::<f32>::default();
            let mut sums64 = Cascade::<f64>::default();
            let w = words(ty);
            for base in (lo..hi).step_by(BLOCK) {
                let len = BLOCK.min(hi - base);
                self.run_block(&mut regs, inputs, base, len, &mut [], fused);
                let view = |s: Src| -> &[u32] {
                    match s {
                        Src::Reg(x) => view(&regs.r[x as usize]),
                        Src::In(k) if len == BLOCK => {
                            let w = self.inputs[k as usize];
                            &inputs[k as usize][base * w..(base + len) * w]
                        }
                        Src::In(k) => view(&regs.pad_in[k as usize]),
                        Src::Out(_) => unreachable!("reductions compile without in-place outputs"),
                    }
                };
                if let (true, Some(tail)) = (fused, self.sum_tail) {
                    let (Tail::Op(_, args) | Tail::Mad(_, args)) = tail;
                    let [a, b, c] = args.map(view);
                    // An operand the tail does not use (the third of `+`,
                    // say) may be of another type: cast to nothing.
                    if ty == Ty::F64 {
                        let [a, b, c] =
                            [a, b, c].map(|s| bytemuck::try_cast_slice(s).unwrap_or(&[]));
                        sums64.push(fused_sum::<F64>(tail, a, b, c, len));
                    } else {
                        let [a, b, c] = [a, b, c].map(bytemuck::cast_slice::<u32, f32>);
                        sums.push(fused_sum::<F32>(tail, a, b, c, len));
                    }
                    continue;
                }
                let block = view(src);
                let v = &block[..len * w];
                match how {
                    How::Sum if ty == Ty::F32 => sums.push(block_sum::<F32>(block, len)),
                    How::Sum if ty == Ty::F64 => sums64.push(block_sum::<F64>(block, len)),
                    How::Sum => {
                        let s = v.iter().fold(0u32, |a, &b| a.wrapping_add(b));
                        acc = acc.combine(Partial::Int(s), how);
                    }
                    How::Min | How::Max => {
                        let best = best_in(v, ty, how == How::Max).map(|(k, i)| (k, base + i));
                        acc = acc.combine(Partial::Arg(best), how);
                    }
                }
            }
            if how == How::Sum && ty == Ty::F32 {
                acc = Partial::Float(sums.total());
            }
            if how == How::Sum && ty == Ty::F64 {
                acc = Partial::Double(sums64.total());
            }
            acc
        };
        if !self.parallel(cpu, n) {
            return leaf(0, n);
        }
        let task = self.task(cpu, n);
        cpu.reduce_parts(
            n.div_ceil(task),
            |t| leaf(t * task, (t * task + task).min(n)),
            |l, r| l.combine(r, how),
        )
    }
}

fn reg(s: Src) -> u16 {
    match s {
        Src::Reg(x) => x,
        _ => unreachable!("splats live in registers"),
    }
}

/// What a fused reduction computes (arg-reductions are `Min`/`Max` with
/// the index kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum How {
    Sum,
    Min,
    Max,
}

/// A partial reduction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Partial {
    /// An f32 sum.
    Float(f32),
    /// An f64 sum.
    Double(f64),
    /// An integer sum's bits (wrapping).
    Int(u32),
    /// The best (key, index) so far; `None` before any non-NaN element.
    /// Keys are the types' order-preserving keys (f64's are 64 bits).
    Arg(Option<(u64, usize)>),
}

impl Partial {
    fn identity(how: How, ty: Ty) -> Partial {
        match how {
            How::Sum if ty == Ty::F32 => Partial::Float(0.0),
            How::Sum if ty == Ty::F64 => Partial::Double(0.0),
            How::Sum => Partial::Int(0),
            _ => Partial::Arg(None),
        }
    }

    /// `self` then `later` (ties keep `self`'s smaller index).
    pub(crate) fn combine(self, later: Partial, how: How) -> Partial {
        match (self, later) {
            (Partial::Float(a), Partial::Float(b)) => Partial::Float(a + b),
            (Partial::Double(a), Partial::Double(b)) => Partial::Double(a + b),
            (Partial::Int(a), Partial::Int(b)) => Partial::Int(a.wrapping_add(b)),
            (Partial::Arg(a), Partial::Arg(b)) => Partial::Arg(match (a, b) {
                (Some(x), Some(y)) => {
                    let later_wins = if how == How::Max {
                        y.0 > x.0
                    } else {
                        y.0 < x.0
                    };
                    Some(if later_wins { y } else { x })
                }
                (x, None) => x,
                (None, y) => y,
            }),
            (a, _) => a,
        }
    }
}

/// Pairwise combination of block sums: a binary counter of partial sums,
/// so a task's error grows with log2 of its blocks, not their count.
#[derive(Default)]
struct Cascade<T> {
    stack: Vec<(u32, T)>,
}

impl<T: Copy + Default + std::ops::Add<Output = T>> Cascade<T> {
    fn push(&mut self, mut v: T) {
        let mut level = 0;
        while let Some(&(l, top)) = self.stack.last() {
            if l != level {
                break;
            }
            self.stack.pop();
            v = v + top;
            level += 1;
        }
        self.stack.push((level, v));
    }

    fn total(&self) -> T {
        self.stack
            .iter()
            .rev()
            .fold(T::default(), |a, &(_, v)| a + v)
    }
}

/// Float lanes the evaluator runs on: [`F32`] or [`F64`].
trait FloatLanes:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
{
    type E: Copy + std::iter::Sum + std::ops::AddAssign + bytemuck::Pod;
    const N: usize;
    const ZERO: Self;
    fn load(s: &[Self::E]) -> Self;
    fn store(self, d: &mut [Self::E]);
    fn fma(self, b: Self, c: Self) -> Self;
    fn total(self) -> Self::E;
    /// The sum of the first `k` lanes.
    fn first(self, k: usize) -> Self::E;

    /// A block of elements from its words (which hold at least [`BLOCK`]).
    #[inline(always)]
    fn block(s: &[u32]) -> &[Self::E] {
        bytemuck::cast_slice(&s[..BLOCK * size_of::<Self::E>() / 4])
    }

    #[inline(always)]
    fn block_mut(s: &mut [u32]) -> &mut [Self::E] {
        bytemuck::cast_slice_mut(&mut s[..BLOCK * size_of::<Self::E>() / 4])
    }
}

macro_rules! float_lanes {
    ($v:ty, $e:ty, $n:expr, $load:path, $store:path) => {
        impl FloatLanes for $v {
            type E = $e;
            const N: usize = $n;
            const ZERO: Self = <$v>::ZERO;
            #[inline(always)]
            fn load(s: &[$e]) -> Self {
                $load(s)
            }
            #[inline(always)]
            fn store(self, d: &mut [$e]) {
                $store(self, d)
            }
            #[inline(always)]
            fn fma(self, b: Self, c: Self) -> Self {
                self.mul_add(b, c)
            }
            #[inline(always)]
            fn total(self) -> $e {
                self.reduce_add()
            }
            #[inline(always)]
            fn first(self, k: usize) -> $e {
                self.to_array()[..k].iter().sum()
            }
        }
    };
}
float_lanes!(F32, f32, LANES, load_f32, store_f32);
float_lanes!(F64, f64, F64_LANES, load_f64, store_f64);

/// The sum of the first `len` of the values `f(j)` gives for the lanes
/// from `j` (two accumulators, then across lanes). `f` is also called for
/// the last, partial vector: its operands must hold whole vectors there.
#[inline(always)]
fn lane_sum<V: FloatLanes>(len: usize, f: impl Fn(usize) -> V) -> V::E {
    let body = len - len % V::N;
    let (mut s0, mut s1) = (V::ZERO, V::ZERO);
    let mut j = 0;
    while j + 2 * V::N <= body {
        s0 += f(j);
        s1 += f(j + V::N);
        j += 2 * V::N;
    }
    if j < body {
        s0 += f(j);
    }
    let mut total = (s0 + s1).total();
    if body < len {
        total += f(body).first(len - body);
    }
    total
}

/// The sum of the first `len` values of a block (its words, a whole block).
fn block_sum<V: FloatLanes>(block: &[u32], len: usize) -> V::E {
    let v = V::block(block);
    lane_sum(len, |j| V::load(&v[j..j + V::N]))
}

/// The sum of the first `len` values of `op` over the block's operands,
/// computed lane by lane into the accumulator (never stored).
fn fused_sum<V: FloatLanes>(tail: Tail, a: &[V::E], b: &[V::E], c: &[V::E], len: usize) -> V::E {
    let l = |s: &[V::E], j: usize| V::load(&s[j..j + V::N]);
    match tail {
        Tail::Op(Op::Add, _) => lane_sum(len, |j| l(a, j) + l(b, j)),
        Tail::Op(Op::Sub, _) => lane_sum(len, |j| l(a, j) - l(b, j)),
        Tail::Op(Op::Mul, _) => lane_sum(len, |j| l(a, j) * l(b, j)),
        Tail::Op(..) => lane_sum(len, |j| l(a, j).fma(l(b, j), l(c, j))),
        Tail::Mad(Mad::Add, _) => lane_sum(len, |j| mad(Mad::Add, l(a, j), l(b, j), l(c, j))),
        Tail::Mad(Mad::Sub, _) => lane_sum(len, |j| mad(Mad::Sub, l(a, j), l(b, j), l(c, j))),
        Tail::Mad(Mad::RevSub, _) => lane_sum(len, |j| mad(Mad::RevSub, l(a, j), l(b, j), l(c, j))),
    }
}

/// The best key in `v` (as type `ty`, in words) and its first index;
/// `None` when every element is NaN or `v` is empty.
fn best_in(v: &[u32], ty: Ty, max: bool) -> Option<(u64, usize)> {
    fn typed<T: Lanes>(v: &[T], max: bool) -> Option<(u64, usize)> {
        let k = extreme_key(v, max);
        find_key(v, k).map(|i| (u64::from(k), i))
    }
    match ty {
        Ty::F32 => typed::<f32>(bytemuck::cast_slice(v), max),
        Ty::I32 => typed::<i32>(bytemuck::cast_slice(v), max),
        Ty::F64 => {
            let v: &[f64] = bytemuck::cast_slice(v);
            let k = extreme_key_f64(v, max);
            find_key_f64(v, k).map(|i| (k, i))
        }
        _ => typed::<u32>(v, max),
    }
}

/// The bits of the value of type `ty` whose key is `key` (a 32-bit type's
/// in the low word).
pub(crate) fn from_key(ty: Ty, key: u64) -> u64 {
    match ty {
        Ty::F32 => u64::from(f32::from_key(key as u32).to_bits()),
        Ty::I32 => u64::from(i32::from_key(key as u32) as u32),
        Ty::F64 => f64_from_key(key).to_bits(),
        _ => key,
    }
}

/// A [`Step::Mad`] on lanes: the product rounded, then the sum.
#[inline(always)]
fn mad<V>(how: Mad, a: V, b: V, c: V) -> V
where
    V: std::ops::Mul<Output = V> + std::ops::Add<Output = V> + std::ops::Sub<Output = V>,
{
    match how {
        Mad::Add => a * b + c,
        Mad::Sub => a * b - c,
        Mad::RevSub => c - a * b,
    }
}

fn mad_block(how: Mad, ty: Ty, d: &mut [u32], a: &[u32], b: &[u32], c: &[u32]) {
    fn of<V: FloatLanes>(how: Mad, d: &mut [u32], a: &[u32], b: &[u32], c: &[u32]) {
        match how {
            Mad::Add => v3::<V>(d, a, b, c, |a, b, c| mad(Mad::Add, a, b, c)),
            Mad::Sub => v3::<V>(d, a, b, c, |a, b, c| mad(Mad::Sub, a, b, c)),
            Mad::RevSub => v3::<V>(d, a, b, c, |a, b, c| mad(Mad::RevSub, a, b, c)),
        }
    }
    if ty == Ty::F64 {
        of::<F64>(how, d, a, b, c);
    } else {
        of::<F32>(how, d, a, b, c);
    }
}

// ---------- one operation over a block ----------

// Each runs over exactly BLOCK elements: a register is longer (room for
// f64), so the destination is cut to the block first.

#[inline(always)]
fn v1<V: FloatLanes>(d: &mut [u32], a: &[u32], f: impl Fn(V) -> V) {
    for (d, a) in V::block_mut(d)
        .chunks_exact_mut(V::N)
        .zip(V::block(a).chunks_exact(V::N))
    {
        f(V::load(a)).store(d);
    }
}

#[inline(always)]
fn v2<V: FloatLanes>(d: &mut [u32], a: &[u32], b: &[u32], f: impl Fn(V, V) -> V) {
    for ((d, a), b) in V::block_mut(d)
        .chunks_exact_mut(V::N)
        .zip(V::block(a).chunks_exact(V::N))
        .zip(V::block(b).chunks_exact(V::N))
    {
        f(V::load(a), V::load(b)).store(d);
    }
}

#[inline(always)]
fn v3<V: FloatLanes>(d: &mut [u32], a: &[u32], b: &[u32], c: &[u32], f: impl Fn(V, V, V) -> V) {
    for (((d, a), b), c) in V::block_mut(d)
        .chunks_exact_mut(V::N)
        .zip(V::block(a).chunks_exact(V::N))
        .zip(V::block(b).chunks_exact(V::N))
        .zip(V::block(c).chunks_exact(V::N))
    {
        f(V::load(a), V::load(b), V::load(c)).store(d);
    }
}

#[inline(always)]
fn f1(d: &mut [u32], a: &[u32], f: impl Fn(F32) -> F32) {
    v1(d, a, f)
}

#[inline(always)]
fn f2(d: &mut [u32], a: &[u32], b: &[u32], f: impl Fn(F32, F32) -> F32) {
    v2(d, a, b, f)
}

#[inline(always)]
fn f3(d: &mut [u32], a: &[u32], b: &[u32], c: &[u32], f: impl Fn(F32, F32, F32) -> F32) {
    v3(d, a, b, c, f)
}

#[inline(always)]
fn w2(d: &mut [u32], a: &[u32], b: &[u32], f: impl Fn(u32, u32) -> u32) {
    for ((d, &a), &b) in d[..BLOCK].iter_mut().zip(a).zip(b) {
        *d = f(a, b);
    }
}

#[inline(always)]
fn w1(d: &mut [u32], a: &[u32], f: impl Fn(u32) -> u32) {
    for (d, &a) in d[..BLOCK].iter_mut().zip(a) {
        *d = f(a);
    }
}

fn mask(b: bool) -> u32 {
    if b { u32::MAX } else { 0 }
}

/// `pow` and `tanh` on one float type's lanes: `x^y` as `exp(y·ln x)`,
/// with the module docs' special cases; `tanh` as `1 − 2/(e^{2x} + 1)`,
/// `±1` past `|x| > $big` (where `1 − tanh` is below half an ulp of 1; the
/// same on both backends).
macro_rules! pow_tanh {
    ($pow:ident, $tanh:ident, $v:ty, $t:ty, $exp:path, $ln:path, $big:expr) => {
        #[inline(always)]
        fn $pow(x: $v, y: $v) -> $v {
            let r = $exp(y * $ln(x));
            let zero = x.simd_eq(<$v>::ZERO);
            let at_zero = y.simd_gt(<$v>::ZERO).select(
                <$v>::ZERO,
                y.simd_eq(<$v>::ZERO)
                    .select(<$v>::ONE, <$v>::splat(<$t>::INFINITY)),
            );
            let r = zero.select(at_zero, r);
            let r = y.simd_eq(<$v>::ZERO).select(<$v>::ONE, r);
            y.is_nan().select(y, r)
        }

        #[inline(always)]
        fn $tanh(x: $v) -> $v {
            let t = <$v>::ONE - <$v>::splat(2.0) / ($exp(x + x) + <$v>::ONE);
            let big = x.abs().simd_gt(<$v>::splat($big));
            let sign = x & <$v>::splat(-0.0);
            big.select(<$v>::ONE | sign, t)
        }
    };
}
pow_tanh!(pow_lanes, tanh_lanes, F32, f32, exp_lanes, ln_lanes, 9.0);
pow_tanh!(
    pow_lanes_f64,
    tanh_lanes_f64,
    F64,
    f64,
    exp_lanes_f64,
    ln_lanes_f64,
    19.0
);

fn op_block(op: Op, ty: Ty, d: &mut [u32], a: &[u32], b: &[u32], c: &[u32]) {
    // Type-independent operations on bits and masks.
    match op {
        Op::Select if ty == Ty::F64 => {
            let (x, y) = (F64::block(b), F64::block(c));
            for (((d, &m), &x), &y) in F64::block_mut(d).iter_mut().zip(a).zip(x).zip(y) {
                *d = if m != 0 { x } else { y };
            }
            return;
        }
        Op::Select => {
            for (((d, &m), &x), &y) in d[..BLOCK].iter_mut().zip(a).zip(b).zip(c) {
                *d = (m & x) | (!m & y);
            }
            return;
        }
        Op::And => return w2(d, a, b, |x, y| x & y),
        Op::Or => return w2(d, a, b, |x, y| x | y),
        Op::Not => return w1(d, a, |x| !x),
        _ => {}
    }
    match ty {
        Ty::F32 => f32_op(op, d, a, b, c),
        Ty::I32 => i32_op(op, d, a, b, c),
        Ty::U32 | Ty::Bool => u32_op(op, d, a, b, c),
        Ty::F64 => f64_op(op, d, a, b, c),
    }
}

fn f32_op(op: Op, d: &mut [u32], a: &[u32], b: &[u32], c: &[u32]) {
    let cmp = |d: &mut [u32], f: fn(F32, F32) -> F32| f2(d, a, b, f);
    match op {
        Op::Add => f2(d, a, b, |x, y| x + y),
        Op::Sub => f2(d, a, b, |x, y| x - y),
        Op::Mul => f2(d, a, b, |x, y| x * y),
        Op::Div => f2(d, a, b, |x, y| x / y),
        Op::Rem => f2(d, a, b, |x, y| x - y * (x / y).trunc()),
        Op::Min => f2(d, a, b, |x, y| pick_lanes(x, y, false)),
        Op::Max => f2(d, a, b, |x, y| pick_lanes(x, y, true)),
        Op::Pow => f2(d, a, b, pow_lanes),
        Op::Fma => f3(d, a, b, c, |x, y, z| x.mul_add(y, z)),
        Op::Neg => f1(d, a, |x| x ^ F32::splat(-0.0)),
        Op::Abs => f1(d, a, |x| x.abs()),
        Op::Sqrt => f1(d, a, |x| x.sqrt()),
        Op::Exp => f1(d, a, exp_lanes),
        Op::Ln => f1(d, a, ln_lanes),
        Op::Sin => f1(d, a, |x| x.sin_cos().0),
        Op::Cos => f1(d, a, |x| x.sin_cos().1),
        Op::Tanh => f1(d, a, tanh_lanes),
        Op::Floor => f1(d, a, |x| x.floor()),
        Op::Ceil => f1(d, a, |x| x.ceil()),
        Op::Round => f1(d, a, |x| x.round_ties_even()),
        Op::Lt => cmp(d, |x, y| x.simd_lt(y)),
        Op::Le => cmp(d, |x, y| x.simd_le(y)),
        Op::Gt => cmp(d, |x, y| x.simd_gt(y)),
        Op::Ge => cmp(d, |x, y| x.simd_ge(y)),
        Op::Eq => cmp(d, |x, y| x.simd_eq(y)),
        Op::Ne => {
            cmp(d, |x, y| x.simd_eq(y));
            d[..BLOCK].iter_mut().for_each(|m| *m = !*m);
        }
        Op::Select | Op::And | Op::Or | Op::Not => unreachable!("handled on bits"),
    }
}

fn i32_op(op: Op, d: &mut [u32], a: &[u32], b: &[u32], c: &[u32]) {
    let s = |x: u32| x as i32;
    match op {
        Op::Add => w2(d, a, b, u32::wrapping_add),
        Op::Sub => w2(d, a, b, u32::wrapping_sub),
        Op::Mul => w2(d, a, b, u32::wrapping_mul),
        Op::Div => w2(d, a, b, |x, y| {
            if y == 0 {
                x
            } else {
                s(x).wrapping_div(s(y)) as u32
            }
        }),
        Op::Rem => w2(d, a, b, |x, y| {
            if y == 0 {
                x
            } else {
                s(x).wrapping_rem(s(y)) as u32
            }
        }),
        Op::Min => w2(d, a, b, |x, y| s(x).min(s(y)) as u32),
        Op::Max => w2(d, a, b, |x, y| s(x).max(s(y)) as u32),
        Op::Fma => {
            for (((d, &x), &y), &z) in d.iter_mut().zip(a).zip(b).zip(c) {
                *d = x.wrapping_mul(y).wrapping_add(z);
            }
        }
        Op::Neg => w1(d, a, |x| s(x).wrapping_neg() as u32),
        Op::Abs => w1(d, a, |x| s(x).wrapping_abs() as u32),
        Op::Lt => w2(d, a, b, |x, y| mask(s(x) < s(y))),
        Op::Le => w2(d, a, b, |x, y| mask(s(x) <= s(y))),
        Op::Gt => w2(d, a, b, |x, y| mask(s(x) > s(y))),
        Op::Ge => w2(d, a, b, |x, y| mask(s(x) >= s(y))),
        Op::Eq => w2(d, a, b, |x, y| mask(x == y)),
        Op::Ne => w2(d, a, b, |x, y| mask(x != y)),
        _ => unreachable!("{op:?} on i32 is rejected by the type check"),
    }
}

fn u32_op(op: Op, d: &mut [u32], a: &[u32], b: &[u32], c: &[u32]) {
    match op {
        Op::Add => w2(d, a, b, u32::wrapping_add),
        Op::Sub => w2(d, a, b, u32::wrapping_sub),
        Op::Mul => w2(d, a, b, u32::wrapping_mul),
        Op::Div => w2(d, a, b, |x, y| x.checked_div(y).unwrap_or(x)),
        Op::Rem => w2(d, a, b, |x, y| x.checked_rem(y).unwrap_or(x)),
        Op::Min => w2(d, a, b, u32::min),
        Op::Max => w2(d, a, b, u32::max),
        Op::Fma => {
            for (((d, &x), &y), &z) in d.iter_mut().zip(a).zip(b).zip(c) {
                *d = x.wrapping_mul(y).wrapping_add(z);
            }
        }
        Op::Abs => w1(d, a, |x| x),
        Op::Lt => w2(d, a, b, |x, y| mask(x < y)),
        Op::Le => w2(d, a, b, |x, y| mask(x <= y)),
        Op::Gt => w2(d, a, b, |x, y| mask(x > y)),
        Op::Ge => w2(d, a, b, |x, y| mask(x >= y)),
        Op::Eq => w2(d, a, b, |x, y| mask(x == y)),
        Op::Ne => w2(d, a, b, |x, y| mask(x != y)),
        _ => unreachable!("{op:?} on u32 is rejected by the type check"),
    }
}

fn cast_block(from: Ty, to: Ty, d: &mut [u32], a: &[u32]) {
    fn from64(d: &mut [u32], a: &[u32], f: impl Fn(f64) -> u32) {
        for (d, &a) in d[..BLOCK].iter_mut().zip(F64::block(a)) {
            *d = f(a);
        }
    }
    fn to64(d: &mut [u32], a: &[u32], f: impl Fn(u32) -> f64) {
        for (d, &a) in F64::block_mut(d).iter_mut().zip(&a[..BLOCK]) {
            *d = f(a);
        }
    }
    match (from, to) {
        (Ty::F64, Ty::F32) => from64(d, a, |x| (x as f32).to_bits()),
        (Ty::F64, Ty::I32) => from64(d, a, |x| x as i32 as u32),
        (Ty::F64, Ty::U32) => from64(d, a, |x| x as u32),
        (Ty::F32, Ty::F64) => to64(d, a, |x| f64::from(f32::from_bits(x))),
        (Ty::I32, Ty::F64) => to64(d, a, |x| f64::from(x as i32)),
        (Ty::U32, Ty::F64) => to64(d, a, f64::from),
        (Ty::Bool, Ty::F64) => to64(d, a, |m| if m != 0 { 1.0 } else { 0.0 }),
        (Ty::F32, Ty::I32) => w1(d, a, |x| f32::from_bits(x) as i32 as u32),
        (Ty::F32, Ty::U32) => w1(d, a, |x| f32::from_bits(x) as u32),
        (Ty::I32, Ty::F32) => w1(d, a, |x| (x as i32 as f32).to_bits()),
        (Ty::U32, Ty::F32) => w1(d, a, |x| (x as f32).to_bits()),
        (Ty::Bool, Ty::F32) => w1(d, a, |m| if m != 0 { 1f32.to_bits() } else { 0 }),
        (Ty::Bool, _) => w1(d, a, |m| m & 1),
        _ => d[..BLOCK].copy_from_slice(&a[..BLOCK]),
    }
}

// ---------- f64 ----------

#[inline(always)]
fn d1(d: &mut [u32], a: &[u32], f: impl Fn(F64) -> F64) {
    v1(d, a, f)
}

#[inline(always)]
fn d2(d: &mut [u32], a: &[u32], b: &[u32], f: impl Fn(F64, F64) -> F64) {
    v2(d, a, b, f)
}

#[inline(always)]
fn d3(d: &mut [u32], a: &[u32], b: &[u32], c: &[u32], f: impl Fn(F64, F64, F64) -> F64) {
    v3(d, a, b, c, f)
}

/// A comparison of two f64 blocks into a block of 32-bit masks.
#[inline(always)]
fn dcmp(d: &mut [u32], a: &[u32], b: &[u32], f: impl Fn(f64, f64) -> bool) {
    for ((d, &x), &y) in d[..BLOCK].iter_mut().zip(F64::block(a)).zip(F64::block(b)) {
        *d = mask(f(x, y));
    }
}

fn f64_op(op: Op, d: &mut [u32], a: &[u32], b: &[u32], c: &[u32]) {
    match op {
        Op::Add => d2(d, a, b, |x, y| x + y),
        Op::Sub => d2(d, a, b, |x, y| x - y),
        Op::Mul => d2(d, a, b, |x, y| x * y),
        Op::Div => d2(d, a, b, |x, y| x / y),
        Op::Rem => d2(d, a, b, |x, y| x - y * (x / y).trunc()),
        Op::Min => d2(d, a, b, |x, y| pick_lanes_f64(x, y, false)),
        Op::Max => d2(d, a, b, |x, y| pick_lanes_f64(x, y, true)),
        Op::Pow => d2(d, a, b, pow_lanes_f64),
        Op::Fma => d3(d, a, b, c, |x, y, z| x.mul_add(y, z)),
        Op::Neg => d1(d, a, |x| x ^ F64::splat(-0.0)),
        Op::Abs => d1(d, a, |x| x.abs()),
        Op::Sqrt => d1(d, a, |x| x.sqrt()),
        Op::Exp => d1(d, a, exp_lanes_f64),
        Op::Ln => d1(d, a, ln_lanes_f64),
        Op::Sin => d1(d, a, |x| x.sin_cos().0),
        Op::Cos => d1(d, a, |x| x.sin_cos().1),
        Op::Tanh => d1(d, a, tanh_lanes_f64),
        Op::Floor => d1(d, a, |x| x.floor()),
        Op::Ceil => d1(d, a, |x| x.ceil()),
        Op::Round => d1(d, a, |x| x.round_ties_even()),
        Op::Lt => dcmp(d, a, b, |x, y| x < y),
        Op::Le => dcmp(d, a, b, |x, y| x <= y),
        Op::Gt => dcmp(d, a, b, |x, y| x > y),
        Op::Ge => dcmp(d, a, b, |x, y| x >= y),
        Op::Eq => dcmp(d, a, b, |x, y| x == y),
        Op::Ne => dcmp(d, a, b, |x, y| x != y),
        Op::Select | Op::And | Op::Or | Op::Not => unreachable!("handled on bits"),
    }
}
