// Elementwise kernels: the GPU twin of src/kernels/map.rs.
//
// `alias T` is rewritten per element type (f32, i32, u32); `KIND` says which
// (0 float, 1 signed, 2 unsigned) and `OP` picks the operation, so one file
// serves every type and op and the compiler folds the switch away.
// Float semantics match the CPU twin bit for bit where IEEE fixes the answer:
// NaN is tested by bits (WGSL assumes finite math), min/max ignore NaN and
// order -0.0 below +0.0, ln/sqrt of negatives give NaN.

alias T = f32;

override KIND: u32 = 0u;
override OP: u32 = 0u;

const WG: u32 = 256u;

struct Params {
    n: u32,
    scale: f32,
    a: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> y: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

const F_NAN: u32 = 0x7fc00000u;
const F_INF: u32 = 0x7f800000u;
const F_NEG_INF: u32 = 0xff800000u;
// 149 * ln(2): ln(2^-149), the scale of the smallest subnormal.
const LN2_149: f32 = 103.27892990343185;

fn is_nan(v: T) -> bool {
    return KIND == 0u && (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Order-preserving key: integer order of keys is the numeric order of values.
fn key(v: T) -> u32 {
    let b = bitcast<u32>(v);
    if KIND == 0u {
        return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
    }
    if KIND == 1u {
        return b ^ 0x80000000u;
    }
    return b;
}

fn pick_min(a: T, b: T) -> T {
    if is_nan(b) { return a; }
    if is_nan(a) { return b; }
    return select(a, b, key(b) < key(a));
}

fn pick_max(a: T, b: T) -> T {
    if is_nan(b) { return a; }
    if is_nan(a) { return b; }
    return select(a, b, key(b) > key(a));
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
            if KIND == 0u { return bitcast<T>(bitcast<u32>(v) ^ 0x80000000u); }
            return T(0) - v;
        }
        // abs: clear the sign bit for floats, wrap for ints (abs(MIN) == MIN).
        case 1u: {
            if KIND == 0u { return bitcast<T>(bitcast<u32>(v) & 0x7fffffffu); }
            if KIND == 1u { return select(v, T(0) - v, bitcast<u32>(v) >= 0x80000000u); }
            return v;
        }
        case 2u: { return T(f_sqrt(f32(v))); }
        case 3u: { return T(f_exp(f32(v))); }
        case 4u: { return T(f_ln(f32(v))); }
        case 5u: { return v * T(params.scale); }
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
                if bitcast<u32>(b) == 0u { return a; }
                if KIND == 1u && bitcast<u32>(a) == 0x80000000u && bitcast<u32>(b) == 0xffffffffu { return a; }
            }
            return a / b;
        }
        case 4u: { return pick_min(a, b); }
        case 5u: { return pick_max(a, b); }
        default: { return a; }
    }
}

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    // Dispatches past 65,535 workgroups are folded into 2-D.
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn unary(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if i < params.n {
        out[i] = unary_op(x[i]);
    }
}

@compute @workgroup_size(WG)
fn binary(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if i < params.n {
        out[i] = binary_op(x[i], y[i]);
    }
}

// out = a * x + y (f32).
@compute @workgroup_size(WG)
fn axpy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index(wid, nwg, lid);
    if i < params.n {
        out[i] = T(fma(params.a, f32(x[i]), f32(y[i])));
    }
}
