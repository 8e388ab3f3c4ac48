// Expression kernels: the prelude every generated shader starts with (the
// GPU twin of src/kernels/expr.rs; the generator is src/expr/wgsl.rs).
//
// Everything above the `generated part` line is copied into each
// expression's shader; below it, this file holds a sample of what the
// generator appends (the expression `out0 = in0 + in0`), so the prelude
// validates on its own. Helpers follow the semantics of the module docs of
// `tandem::expr`, the same rules as the CPU evaluator: NaN is tested by bits
// (WGSL assumes finite math), min/max ignore NaN and order -0.0 below +0.0,
// integer division by zero returns the dividend.

fn f_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Order-preserving keys: integer order of keys is the numeric order.
fn f_key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn i_key(v: i32) -> u32 {
    return bitcast<u32>(v) ^ 0x80000000u;
}

fn f_pick(a: f32, b: f32, max: bool) -> f32 {
    if f_nan(b) { return a; }
    if f_nan(a) { return b; }
    let ka = f_key(a);
    let kb = f_key(b);
    return select(a, b, select((kb < ka), (kb > ka), max));
}

fn f_sqrt(v: f32) -> f32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u || (b & 0x7fffffffu) == 0u { return v; }
    if (b & 0x80000000u) != 0u { return bitcast<f32>(0x7fc00000u); }
    if b == 0x7f800000u { return v; }
    return sqrt(v);
}

fn f_exp(v: f32) -> f32 {
    if f_nan(v) { return v; }
    if v > 88.72283 { return bitcast<f32>(0x7f800000u); }
    if v < -103.97208 { return 0.0; }
    return exp(v);
}

fn f_ln(v: f32) -> f32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u { return v; }
    if (b & 0x7fffffffu) == 0u { return bitcast<f32>(0xff800000u); }
    if (b & 0x80000000u) != 0u { return bitcast<f32>(0x7fc00000u); }
    if b == 0x7f800000u { return v; }
    // A subnormal is b * 2^-149 exactly: take the log of a normal number.
    if b < 0x00800000u { return log(f32(b)) - 103.27892990343185; }
    return log(v);
}

// exp(y ln x); pow(x, 0) = 1, pow(0, y) is 0, 1 or +inf by the sign of y.
fn f_pow(x: f32, y: f32) -> f32 {
    if f_nan(y) { return y; }
    if y == 0.0 { return 1.0; }
    if (bitcast<u32>(x) & 0x7fffffffu) == 0u {
        return select(bitcast<f32>(0x7f800000u), 0.0, y > 0.0);
    }
    return f_exp(y * f_ln(x));
}

fn f_tanh(x: f32) -> f32 {
    if f_nan(x) { return x; }
    if abs(x) > 9.0 { return select(1.0, -1.0, x < 0.0); }
    return 1.0 - 2.0 / (f_exp(x + x) + 1.0);
}

fn f_rem(x: f32, y: f32) -> f32 {
    return x - y * trunc(x / y);
}

fn f_lt(a: f32, b: f32) -> bool { return !f_nan(a) && !f_nan(b) && a < b; }
fn f_le(a: f32, b: f32) -> bool { return !f_nan(a) && !f_nan(b) && a <= b; }
fn f_gt(a: f32, b: f32) -> bool { return !f_nan(a) && !f_nan(b) && a > b; }
fn f_ge(a: f32, b: f32) -> bool { return !f_nan(a) && !f_nan(b) && a >= b; }
fn f_eq(a: f32, b: f32) -> bool { return !f_nan(a) && !f_nan(b) && a == b; }

// Saturating conversions, NaN to 0 (Rust's `as`).
fn f_to_i(x: f32) -> i32 {
    if f_nan(x) { return 0; }
    if x >= 2147483648.0 { return 2147483647; }
    if x <= -2147483648.0 { return i32(-2147483648); }
    return i32(x);
}

fn f_to_u(x: f32) -> u32 {
    if f_nan(x) || x <= 0.0 { return 0u; }
    if x >= 4294967296.0 { return 4294967295u; }
    return u32(x);
}

// Integer division by zero and MIN / -1 return the dividend; the remainder
// by zero is the dividend, MIN % -1 is 0.
fn i_div(a: i32, b: i32) -> i32 {
    if b == 0 || (a == i32(-2147483648) && b == -1) { return a; }
    return a / b;
}

fn i_rem(a: i32, b: i32) -> i32 {
    if b == 0 { return a; }
    if a == i32(-2147483648) && b == -1 { return 0; }
    return a % b;
}

fn u_div(a: u32, b: u32) -> u32 {
    if b == 0u { return a; }
    return a / b;
}

fn u_rem(a: u32, b: u32) -> u32 {
    if b == 0u { return a; }
    return a % b;
}

fn i_neg(a: i32) -> i32 {
    return bitcast<i32>(0u - bitcast<u32>(a));
}

fn f_neg(a: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(a) ^ 0x80000000u);
}

fn f_abs(a: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(a) & 0x7fffffffu);
}

// The better of two (key, index) pairs: extreme key, then the smaller index.
fn better(a: vec2<u32>, b: vec2<u32>, max: bool) -> vec2<u32> {
    if a.y == 0xffffffffu { return b; }
    if b.y == 0xffffffffu { return a; }
    if a.x != b.x {
        return select(a, b, select((b.x < a.x), (b.x > a.x), max));
    }
    return select(a, b, b.y < a.y);
}

// begin f64
// f64 helpers, only in the shaders of expressions with an f64 value (they
// need SHADER_F64 and SHADER_INT64); exp and ln are the prelude's
// polynomials, sin and cos the fdlibm kernels below.

// Order-preserving key: integer order of keys is the numeric order.
fn d_key(v: f64) -> u64 {
    let b = bitcast<u64>(v);
    return select(b | 0x8000000000000000lu, ~b, (b >> 63u) != 0lu);
}

fn d_pick(a: f64, b: f64, max: bool) -> f64 {
    if f64_nan(b) { return a; }
    if f64_nan(a) { return b; }
    let ka = d_key(a);
    let kb = d_key(b);
    return select(a, b, select((kb < ka), (kb > ka), max));
}

fn d_sqrt(v: f64) -> f64 {
    if f64_nan(v) || v == f64(0) || f64_inf(v) && v > f64(0) { return v; }
    if v < f64(0) { return bitcast<f64>(0x7ff8000000000000lu); }
    return sqrt(v);
}

fn d_pow(x: f64, y: f64) -> f64 {
    if f64_nan(y) { return y; }
    if y == f64(0) { return f64(1); }
    if (bitcast<u64>(x) & 0x7ffffffffffffffflu) == 0lu {
        return select(bitcast<f64>(0x7ff0000000000000lu), f64(0), y > f64(0));
    }
    return d_exp(y * d_ln(x));
}

fn d_tanh(x: f64) -> f64 {
    if f64_nan(x) { return x; }
    if abs(x) > f64(19) { return select(f64(1), f64(-1), x < f64(0)); }
    return f64(1) - f64(2) / (d_exp(x + x) + f64(1));
}

// sin (cos with `cosine`): x = k pi/2 + r, pi/2 in three parts (exact
// products for |k| < 2^20, fdlibm's split), |r| <= pi/4, then fdlibm's
// kernel polynomials for sin r and cos r picked and signed by k mod 4.
// Past |x| = 2^52 no reduction of this kind means anything: NaN.
fn d_sin_cos(x: f64, cosine: bool) -> f64 {
    if f64_nan(x) || !(abs(x) < f64(4503599627370496.0)) {
        return bitcast<f64>(0x7ff8000000000000lu);
    }
    let k = round(x * f64(6.36619772367581382433e-01));
    var r = fma(-k, f64(1.57079632673412561417e+00), x);
    r = fma(-k, f64(6.07710050630396597660e-11), r);
    r = fma(-k, f64(2.02226624871116645580e-21), r);
    let z = r * r;
    let ps = fma(z, fma(z, fma(z, fma(z, f64(1.58969099521155010221e-10),
        f64(-2.50507602534068634195e-08)), f64(2.75573137070700676789e-06)),
        f64(-1.98412698298579493134e-04)), f64(8.33333333332248946124e-03));
    let s = r + z * r * fma(z, ps, f64(-1.66666666666666324348e-01));
    let pc = z * fma(z, fma(z, fma(z, fma(z, fma(z, f64(-1.13596475577881948265e-11),
        f64(2.08757232129817482790e-09)), f64(-2.75573143513906633035e-07)),
        f64(2.48015872894767294178e-05)), f64(-1.38888888888741095749e-03)),
        f64(4.16666666666666019037e-02));
    let hz = f64(0.5) * z;
    let w = f64(1) - hz;
    let c = w + (((f64(1) - w) - hz) + z * pc);
    let q = (i32(k % f64(4)) + 4 + select(0, 1, cosine)) % 4;
    switch q {
        case 0: { return s; }
        case 1: { return c; }
        case 2: { return -s; }
        default: { return -c; }
    }
}

fn d_sin(x: f64) -> f64 { return d_sin_cos(x, false); }
fn d_cos(x: f64) -> f64 { return d_sin_cos(x, true); }
fn d_exp(x: f64) -> f64 { return f64_exp(x); }
fn d_ln(x: f64) -> f64 { return f64_ln(x); }

fn d_rem(x: f64, y: f64) -> f64 {
    return x - y * trunc(x / y);
}

fn d_lt(a: f64, b: f64) -> bool { return !f64_nan(a) && !f64_nan(b) && a < b; }
fn d_le(a: f64, b: f64) -> bool { return !f64_nan(a) && !f64_nan(b) && a <= b; }
fn d_gt(a: f64, b: f64) -> bool { return !f64_nan(a) && !f64_nan(b) && a > b; }
fn d_ge(a: f64, b: f64) -> bool { return !f64_nan(a) && !f64_nan(b) && a >= b; }
fn d_eq(a: f64, b: f64) -> bool { return !f64_nan(a) && !f64_nan(b) && a == b; }

// Saturating conversions, NaN to 0 (Rust's `as`).
fn d_to_i(x: f64) -> i32 {
    if f64_nan(x) { return 0; }
    if x >= f64(2147483647) { return 2147483647; }
    if x <= f64(-2147483648) { return i32(-2147483648); }
    return i32(x);
}

fn d_to_u(x: f64) -> u32 {
    if f64_nan(x) || x <= f64(0) { return 0u; }
    if x >= f64(4294967295) { return 4294967295u; }
    return u32(x);
}

fn d_to_f(x: f64) -> f32 {
    return f32(x);
}

fn d_neg(a: f64) -> f64 {
    return bitcast<f64>(bitcast<u64>(a) ^ 0x8000000000000000lu);
}

fn d_abs(a: f64) -> f64 {
    return bitcast<f64>(bitcast<u64>(a) & 0x7ffffffffffffffflu);
}

// An f64 from a scalar's two words (low first).
fn d_of(lo: u32, hi: u32) -> f64 {
    return bitcast<f64>(u64(lo) | (u64(hi) << 32u));
}

// `better` with 64-bit keys: (key high, key low, index, unused).
fn better64(a: vec4<u32>, b: vec4<u32>, max: bool) -> vec4<u32> {
    if a.z == 0xffffffffu { return b; }
    if b.z == 0xffffffffu { return a; }
    if a.x != b.x || a.y != b.y {
        let b_less = b.x < a.x || (b.x == a.x && b.y < a.y);
        return select(a, b, select(b_less, !b_less, max));
    }
    return select(a, b, b.z < a.z);
}
// end f64

// ---- the generated part starts here ----

@group(0) @binding(1) var<storage, read> in0: array<T>;
@group(0) @binding(2) var<storage, read_write> out0: array<T>;

@compute @workgroup_size(WG)
fn map(id: Ids) {
    let i = global_index(id);
    if i >= params.n { return; }
    let v0 = in0[i];
    out0[i] = v0 + v0;
}
