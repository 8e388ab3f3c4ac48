//! WGSL generation: a [`Program`] becomes one compute shader, the prelude
//! of `shaders/expr.wgsl` plus bindings and an entry point that evaluates
//! every instruction as a `let`. Scalars are read from the uniform block,
//! so the text depends only on the expression's structure: the engine's
//! pipeline cache (keyed by source) compiles each structure once.
//! Generated text is validated with naga before it reaches the driver.

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::Op;
use super::cpu::{How, words};
use super::ir::{Kind, Program, Ty};
use crate::buffer::ElementType;
use crate::gpu::shader;

shader! {
    "expr.wgsl",
    /// The uniform block of every expression's shader: `n` elements in this
    /// dispatch's range, `groups` the workgroups that hold real elements,
    /// `out_offset` where its first partial goes (reductions), `base` the
    /// global index of its first element (arg-reductions), `s` the scalar
    /// parameters' bits, four per vector.
    struct Params { n: u32, groups: u32, out_offset: u32, base: u32, s: [[u32; 4]; 4] }
    /// Elements one invocation reduces.
    const PER_THREAD: u32 = 8;
    /// Elements one workgroup of a reduction handles: `WG * PER_THREAD`.
    const TILE: usize = 2048;
}

/// `shaders/expr.wgsl` as it is on disk (the start of [`SHADER`]).
const FILE: &str = include_str!("../../shaders/expr.wgsl");
const MARKER: &str = "// ---- the generated part starts here ----";

/// Scalars one program may take on the GPU (`Params::s`).
pub(crate) const MAX_SCALARS: usize = 16;

/// What every generated shader starts with: the file above its marker line
/// (helpers), the tandem prelude and `Params`; the file's sample entry
/// point below the marker is left out. The f64 helpers (type sections
/// `f64`) are kept only for a program with an f64 value: they would not
/// compile on a device without SHADER_F64.
fn prelude(f64: bool) -> &'static str {
    static PRELUDE: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    PRELUDE[usize::from(f64)].get_or_init(|| {
        let helpers = &FILE[..FILE.find(MARKER).expect("expr.wgsl has the marker line")];
        let t = if f64 {
            ElementType::F64
        } else {
            ElementType::F32
        };
        crate::gpu::type_sections(&format!("{helpers}{}", &SHADER[FILE.len()..]), Some(t))
            .expect("expr.wgsl's type sections are well formed")
    })
}

/// The first uniform word of each scalar of `p` (an f64 takes two).
fn scalar_offsets(p: &Program) -> Vec<usize> {
    p.scalars
        .iter()
        .scan(0, |at, &(_, t)| {
            let first = *at;
            *at += words(t);
            Some(first)
        })
        .collect()
}

/// The uniform words of `p`'s scalars from their bits (a 32-bit type's in
/// the low word; an f64's low word first).
pub(crate) fn scalar_words(p: &Program, bits: &[u64]) -> Vec<u32> {
    let mut out = Vec::new();
    for (&(_, t), &b) in p.scalars.iter().zip(bits) {
        out.push(b as u32);
        if t == Ty::F64 {
            out.push((b >> 32) as u32);
        }
    }
    out
}

/// The uniform bytes of one dispatch.
pub(crate) fn params(
    n: usize,
    groups: usize,
    out_offset: usize,
    base: usize,
    scalars: &[u32],
) -> Params {
    let mut s = [0u32; MAX_SCALARS];
    s[..scalars.len()].copy_from_slice(scalars);
    Params {
        n: n as u32,
        groups: groups as u32,
        out_offset: out_offset as u32,
        base: base as u32,
        s: bytemuck::cast(s),
    }
}

fn wgsl(t: Ty) -> &'static str {
    match t {
        Ty::F32 => "f32",
        Ty::I32 => "i32",
        Ty::U32 => "u32",
        Ty::Bool => "bool",
        Ty::F64 => "f64",
    }
}

/// The `let` lines that compute every value of `p` at index `i`.
fn body(p: &Program, out: &mut String) {
    let offsets = scalar_offsets(p);
    for (k, inst) in p.insts.iter().enumerate() {
        let t = wgsl(inst.ty);
        let v = |x: u32| format!("v{x}");
        let e = match inst.kind {
            Kind::Input(a) => format!("in{a}[i]"),
            Kind::Scalar(s) => {
                let at = offsets[s as usize];
                let w = |at: usize| format!("params.s[{}][{}]", at / 4, at % 4);
                match inst.ty {
                    Ty::U32 => w(at),
                    Ty::F64 => format!("d_of({}, {})", w(at), w(at + 1)),
                    _ => format!("bitcast<{t}>({})", w(at)),
                }
            }
            Kind::Const(bits) => match inst.ty {
                Ty::U32 => format!("{bits}u"),
                Ty::Bool => (bits != 0).to_string(),
                Ty::F64 => format!("bitcast<f64>({bits}lu)"),
                _ => format!("bitcast<{t}>({bits}u)"),
            },
            Kind::Cast(from, a) => {
                let a = v(a);
                match (from, inst.ty) {
                    (Ty::F32, Ty::I32) => format!("f_to_i({a})"),
                    (Ty::F32, Ty::U32) => format!("f_to_u({a})"),
                    (Ty::F64, Ty::I32) => format!("d_to_i({a})"),
                    (Ty::F64, Ty::U32) => format!("d_to_u({a})"),
                    (Ty::Bool, Ty::F32) => format!("select(0.0, 1.0, {a})"),
                    (Ty::Bool, Ty::F64) => format!("select(f64(0), f64(1), {a})"),
                    (Ty::Bool, Ty::I32) => format!("select(0i, 1i, {a})"),
                    (Ty::Bool, _) => format!("select(0u, 1u, {a})"),
                    (Ty::I32, Ty::U32) | (Ty::U32, Ty::I32) => format!("bitcast<{t}>({a})"),
                    _ => format!("{t}({a})"),
                }
            }
            Kind::Op(op, args) => {
                let operand = if op == Op::Select {
                    p.ty(args[1])
                } else {
                    p.ty(args[0])
                };
                let [a, b, c] = args.map(v);
                expr_of(op, operand, &a, &b, &c)
            }
        };
        let _ = writeln!(out, "        let v{k}: {t} = {e};");
    }
}

fn expr_of(op: Op, t: Ty, a: &str, b: &str, c: &str) -> String {
    // Float helpers come in pairs: `f_*` on f32, `d_*` on f64 (expr.wgsl).
    let f = matches!(t, Ty::F32 | Ty::F64);
    let q = if t == Ty::F64 { "d" } else { "f" };
    match op {
        Op::Add => format!("{a} + {b}"),
        Op::Sub => format!("{a} - {b}"),
        Op::Mul => format!("{a} * {b}"),
        Op::Div if f => format!("{a} / {b}"),
        Op::Div if t == Ty::I32 => format!("i_div({a}, {b})"),
        Op::Div => format!("u_div({a}, {b})"),
        Op::Rem if f => format!("{q}_rem({a}, {b})"),
        Op::Rem if t == Ty::I32 => format!("i_rem({a}, {b})"),
        Op::Rem => format!("u_rem({a}, {b})"),
        Op::Min if f => format!("{q}_pick({a}, {b}, false)"),
        Op::Max if f => format!("{q}_pick({a}, {b}, true)"),
        Op::Min => format!("min({a}, {b})"),
        Op::Max => format!("max({a}, {b})"),
        Op::Fma if f => format!("fma({a}, {b}, {c})"),
        Op::Fma => format!("{a} * {b} + {c}"),
        Op::Neg if f => format!("{q}_neg({a})"),
        Op::Neg => format!("i_neg({a})"),
        Op::Abs if f => format!("{q}_abs({a})"),
        Op::Abs if t == Ty::I32 => format!("select({a}, i_neg({a}), {a} < 0i)"),
        Op::Abs => a.to_string(),
        Op::Sqrt => format!("{q}_sqrt({a})"),
        Op::Exp => format!("{q}_exp({a})"),
        Op::Ln => format!("{q}_ln({a})"),
        Op::Pow => format!("{q}_pow({a}, {b})"),
        // f32 takes the device's builtins; f64 has no reliable ones.
        Op::Sin if t == Ty::F64 => format!("d_sin({a})"),
        Op::Cos if t == Ty::F64 => format!("d_cos({a})"),
        Op::Sin => format!("sin({a})"),
        Op::Cos => format!("cos({a})"),
        Op::Tanh => format!("{q}_tanh({a})"),
        Op::Floor => format!("floor({a})"),
        Op::Ceil => format!("ceil({a})"),
        Op::Round => format!("round({a})"),
        Op::Lt if f => format!("{q}_lt({a}, {b})"),
        Op::Le if f => format!("{q}_le({a}, {b})"),
        Op::Gt if f => format!("{q}_gt({a}, {b})"),
        Op::Ge if f => format!("{q}_ge({a}, {b})"),
        Op::Eq if f => format!("{q}_eq({a}, {b})"),
        Op::Ne if f => format!("!{q}_eq({a}, {b})"),
        Op::Lt => format!("({a} < {b})"),
        Op::Le => format!("({a} <= {b})"),
        Op::Gt => format!("({a} > {b})"),
        Op::Ge => format!("({a} >= {b})"),
        Op::Eq => format!("({a} == {b})"),
        Op::Ne => format!("({a} != {b})"),
        Op::And => format!("{a} && {b}"),
        Op::Or => format!("{a} || {b}"),
        Op::Not => format!("!{a}"),
        Op::Select => format!("select({c}, {b}, {a})"),
    }
}

fn bindings(p: &Program, out: &mut String) {
    for (k, (_, t)) in p.arrays.iter().enumerate() {
        let _ = writeln!(
            out,
            "@group(0) @binding({}) var<storage, read> in{k}: array<{}>;",
            k + 1,
            wgsl(*t)
        );
    }
}

const ENTRY_HEAD: &str = "@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
";

/// The shader of a map: one invocation per element, every output written.
pub(crate) fn map(p: &Program) -> String {
    let mut s = prelude(p.has_f64()).to_string();
    bindings(p, &mut s);
    let first = p.arrays.len() + 1;
    for (j, &o) in p.outputs.iter().enumerate() {
        let _ = writeln!(
            s,
            "@group(0) @binding({}) var<storage, read_write> out{j}: array<{}>;",
            first + j,
            wgsl(p.ty(o))
        );
    }
    s.push_str(ENTRY_HEAD);
    s.push_str("    let i = group_index(wid, nwg) * WG + lid;\n    if i < params.n {\n");
    body(p, &mut s);
    for (j, &o) in p.outputs.iter().enumerate() {
        let _ = writeln!(s, "        out{j}[i] = v{o};");
    }
    s.push_str("    }\n}\n");
    s
}

/// The first pass of a fused reduction of `p`'s first output: each
/// workgroup reduces a tile of `TILE` elements to one partial (an f32 sum,
/// an integer sum's bits, or a `(key, index)` pair).
pub(crate) fn reduce(p: &Program, how: How) -> String {
    let o = p.outputs[0];
    let t = p.ty(o);
    let mut s = prelude(p.has_f64()).to_string();
    bindings(p, &mut s);
    let slot = p.arrays.len() + 1;
    let (acc_t, ident, step) = match how {
        How::Sum if t == Ty::F32 => ("f32", "0.0".to_string(), format!("acc = acc + v{o};")),
        How::Sum if t == Ty::F64 => ("f64", "f64(0)".to_string(), format!("acc = acc + v{o};")),
        How::Min | How::Max if t == Ty::F64 => (
            "vec4<u32>",
            "vec4(0u, 0u, 0xffffffffu, 0u)".to_string(),
            format!(
                "if !f64_nan(v{o}) {{ let k = d_key(v{o}); acc = better64(acc, vec4(u32(k >> 32u), u32(k & 0xfffffffflu), params.base + i, 0u), {}); }}",
                how == How::Max
            ),
        ),
        How::Sum => (
            "u32",
            "0u".to_string(),
            format!("acc = acc + bitcast<u32>(v{o});"),
        ),
        How::Min | How::Max => {
            let max = how == How::Max;
            let key = match t {
                Ty::F32 => format!("f_key(v{o})"),
                Ty::I32 => format!("i_key(v{o})"),
                _ => format!("v{o}"),
            };
            let skip = if t == Ty::F32 {
                format!("!f_nan(v{o})")
            } else {
                "true".into()
            };
            (
                "vec2<u32>",
                "vec2(0u, 0xffffffffu)".to_string(),
                format!("if {skip} {{ acc = better(acc, vec2({key}, params.base + i), {max}); }}"),
            )
        }
    };
    let _ = writeln!(
        s,
        "@group(0) @binding({slot}) var<storage, read_write> partials: array<{acc_t}>;"
    );
    let _ = writeln!(s, "var<workgroup> sh: array<{acc_t}, WG>;\n");
    s.push_str(ENTRY_HEAD);
    let _ = writeln!(
        s,
        "    let g = group_index(wid, nwg);\n    var acc = {ident};"
    );
    s.push_str(
        "    for (var k = 0u; k < PER_THREAD; k++) {\n        let i = g * TILE + k * WG + lid;\n        if i < params.n {\n",
    );
    body(p, &mut s);
    let _ = writeln!(s, "        {step}\n        }}\n    }}");
    let combine = match how {
        How::Sum => "sh[lid] + sh[lid + s]".to_string(),
        How::Min | How::Max if t == Ty::F64 => {
            format!("better64(sh[lid], sh[lid + s], {})", how == How::Max)
        }
        How::Min | How::Max => format!("better(sh[lid], sh[lid + s], {})", how == How::Max),
    };
    let _ = write!(
        s,
        "    sh[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {{
        if lid < s {{
            sh[lid] = {combine};
        }}
        workgroupBarrier();
    }}
    if lid == 0u && g < params.groups {{
        partials[params.out_offset + g] = sh[0];
    }}
}}
"
    );
    s
}

/// Parses and validates generated WGSL with naga: an error here is a bug
/// in the generator, reported as an error rather than a driver crash.
pub(crate) fn validate(source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    use naga::valid::Capabilities;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        Capabilities::default() | Capabilities::FLOAT64 | Capabilities::SHADER_INT64,
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(source))?;
    Ok(())
}
