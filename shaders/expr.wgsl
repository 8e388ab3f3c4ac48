// Expression kernels: the prelude every generated shader starts with (the
// GPU twin of src/kernels/expr.rs; the generator is src/expr/wgsl.rs).
//
// Everything above the `generated part` line is copied into each
// expression's shader; below it, this file holds a sample of what the
// generator appends (the expression `out0 = in0 + s0`), so the prelude
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

// ---- the generated part starts here ----

@group(0) @binding(1) var<storage, read> in0: array<T>;
@group(0) @binding(2) var<storage, read_write> out0: array<T>;

@compute @workgroup_size(WG)
fn map(id: Ids) {
    let i = global_index(id);
    if i >= params.n { return; }
    let v0 = in0[i];
    let v1 = bitcast<T>(params.s[0][0]);
    out0[i] = v0 + v1;
}
