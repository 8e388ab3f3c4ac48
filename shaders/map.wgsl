// Elementwise kernels: the GPU twin of src/kernels/map.rs.
//
// `alias T` is rewritten per element type (f32, i32, u32, f64); `KIND` says
// which (0 float, 1 signed, 2 unsigned) and `OP` picks the operation, so one
// file serves every type and op and the compiler folds the switch away. The
// helpers that read an element's bits come in two type sections: 32-bit
// (`not-f64`) and f64, whose exp and ln are the prelude's polynomials
// (f64 transcendental builtins do not translate reliably, gfx-rs/wgpu#6087).
// Float semantics match the CPU twin bit for bit where IEEE fixes the answer:
// NaN is tested by bits (WGSL assumes finite math), min/max ignore NaN and
// order -0.0 below +0.0, ln/sqrt of negatives give NaN.

override OP: u32 = 0u;

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> y: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

const F_NAN: u32 = 0x7fc00000u;
const F_INF: u32 = 0x7f800000u;
const F_NEG_INF: u32 = 0xff800000u;
// 149 * ln(2): ln(2^-149), the scale of the smallest subnormal.
const LN2_149: f32 = 103.27892990343185;

// begin not-f64
// The element's bits (32-bit types), its sign flipped or cleared.
fn bits(v: T) -> u32 {
    return bitcast<u32>(v);
}

fn is_nan(v: T) -> bool {
    return KIND == 0u && (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Order-preserving key, major word first: integer order of keys is the
// numeric order of values.
fn key(v: T) -> vec2<u32> {
    let b = bitcast<u32>(v);
    if KIND == 0u {
        return vec2(select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u), 0u);
    }
    if KIND == 1u {
        return vec2(b ^ 0x80000000u, 0u);
    }
    return vec2(b, 0u);
}

fn flip_sign(v: T) -> T {
    return bitcast<T>(bitcast<u32>(v) ^ 0x80000000u);
}

fn clear_sign(v: T) -> T {
    return bitcast<T>(bitcast<u32>(v) & 0x7fffffffu);
}

fn t_sqrt(v: T) -> T { return T(f_sqrt(f32(v))); }
fn t_exp(v: T) -> T { return T(f_exp(f32(v))); }
fn t_ln(v: T) -> T { return T(f_ln(f32(v))); }
// end not-f64
// begin f64
// f64 bits are read as u64 (SHADER_INT64 comes with tandem's f64 feature:
// naga's bitcast of an f64 to vec2<u32> is not usable).
// The high word (sign, exponent, top of the significand) of an f64.
fn bits(v: T) -> u32 {
    return u32(bitcast<u64>(v) >> 32u);
}

fn is_nan(v: T) -> bool {
    return (bitcast<u64>(v) & 0x7ffffffffffffffflu) > 0x7ff0000000000000lu;
}

fn key(v: T) -> vec2<u32> {
    let b = bitcast<u64>(v);
    let k = select(b | 0x8000000000000000lu, ~b, (b >> 63u) != 0lu);
    return vec2(u32(k >> 32u), u32(k & 0xfffffffflu));
}

fn flip_sign(v: T) -> T {
    return bitcast<T>(bitcast<u64>(v) ^ 0x8000000000000000lu);
}

fn clear_sign(v: T) -> T {
    return bitcast<T>(bitcast<u64>(v) & 0x7ffffffffffffffflu);
}

fn t_sqrt(v: T) -> T {
    if is_nan(v) || v == T(0) || f64_inf(v) && v > T(0) { return v; }
    if v < T(0) { return bitcast<T>(0x7ff8000000000000lu); }
    return sqrt(v);
}

fn t_exp(v: T) -> T { return f64_exp(v); }
fn t_ln(v: T) -> T { return f64_ln(v); }
// end f64

fn key_less(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x < b.x || (a.x == b.x && a.y < b.y);
}

fn pick_min(a: T, b: T) -> T {
    if is_nan(b) { return a; }
    if is_nan(a) { return b; }
    return select(a, b, key_less(key(b), key(a)));
}

fn pick_max(a: T, b: T) -> T {
    if is_nan(b) { return a; }
    if is_nan(a) { return b; }
    return select(a, b, key_less(key(a), key(b)));
}

fn f_sqrt(v: f32) -> f32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u || (b & 0x7fffffffu) == 0u { return v; }
    if (b & 0x80000000u) != 0u { return bitcast<f32>(F_NAN); }
    if b == F_INF { return v; }
    return sqrt(v);
}

fn f_exp(v: f32) -> f32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u { return v; }
    if v > 88.72283 { return bitcast<f32>(F_INF); }
    if v < -103.97208 { return 0.0; }
    return exp(v);
}

fn f_ln(v: f32) -> f32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u { return v; }
    if (b & 0x7fffffffu) == 0u { return bitcast<f32>(F_NEG_INF); }
    if (b & 0x80000000u) != 0u { return bitcast<f32>(F_NAN); }
    if b == F_INF { return v; }
    // A subnormal is b * 2^-149 exactly, and f32(b) is exact: take the log
    // of a normal number (GPUs may flush or mishandle subnormal inputs).
    if b < 0x00800000u { return log(f32(b)) - LN2_149; }
    return log(v);
}

fn unary_op(v: T) -> T {
    switch OP {
        // neg: flip the sign bit for floats (so -(+0.0) is -0.0), wrap for ints.
        case 0u: {
            if KIND == 0u { return flip_sign(v); }
            return T(0) - v;
        }
        // abs: clear the sign bit for floats, wrap for ints (abs(MIN) == MIN).
        case 1u: {
            if KIND == 0u { return clear_sign(v); }
            if KIND == 1u { return select(v, T(0) - v, bits(v) >= 0x80000000u); }
            return v;
        }
        case 2u: { return t_sqrt(v); }
        case 3u: { return t_exp(v); }
        case 4u: { return t_ln(v); }
        case 5u: { return v * T(params.scale); }
        case 6u: { return v * v; }
        default: { return v; }
    }
}

fn binary_op(a: T, b: T) -> T {
    switch OP {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: {
            // Integer division by zero, or MIN / -1, gives the dividend (as WGSL
            // defines it and the CPU twin does).
            if KIND != 0u {
                if bits(b) == 0u { return a; }
                if KIND == 1u && bits(a) == 0x80000000u && bits(b) == 0xffffffffu { return a; }
            }
            return a / b;
        }
        case 4u: { return pick_min(a, b); }
        case 5u: { return pick_max(a, b); }
        default: { return a; }
    }
}

@compute @workgroup_size(WG)
fn unary(id: Ids) {
    let i = global_index(id);
    if i < params.n {
        out[i] = unary_op(x[i]);
    }
}

@compute @workgroup_size(WG)
fn binary(id: Ids) {
    let i = global_index(id);
    if i < params.n {
        out[i] = binary_op(x[i], y[i]);
    }
}

// out = a * x + y (f32).
@compute @workgroup_size(WG)
fn axpy(id: Ids) {
    let i = global_index(id);
    if i < params.n {
        out[i] = T(fma(params.a, f32(x[i]), f32(y[i])));
    }
}
