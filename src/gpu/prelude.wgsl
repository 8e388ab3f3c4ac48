// ---- the tandem prelude ----
// Appended to every kernel's shader by `gpu::shader!` (WGSL declarations
// may come in any order, so the file's own line numbers stay as they are in
// error messages), then the constants and `Params` declared with it in Rust.
//
// `alias T` is rewritten to the element type (`gpu::specialize`); `KIND` is
// the element kind: 0 float, 1 signed, 2 unsigned.

alias T = f32;

override KIND: u32 = 0u;

// Invocations per workgroup of the one-dimensional kernels
// (`gpu::WORKGROUP_SIZE`).
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;

// The builtins a one-dimensional kernel reads, as its one entry-point
// parameter: `fn name(id: Ids)`.
struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// A workgroup's linear index in a dispatch that `Gpu::submit` folded into
// 2-D past `max_compute_workgroups_per_dimension`.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}


// `group_index` of the invocation's workgroup.
fn group_of(id: Ids) -> u32 {
    return group_index(id.wid, id.nwg);
}

// The invocation's element: its workgroup's first plus its lane.
fn global_index(id: Ids) -> u32 {
    return group_of(id) * WG + id.lid;
}

// begin f64
// f64 helpers, kept only in shaders specialized to f64 (or generated with
// an f64 value): they need SHADER_F64 and SHADER_INT64 (bits are read as
// u64). exp and ln are polynomials: f64 transcendental builtins do not
// translate reliably (gfx-rs/wgpu#6087).
fn f64_nan(v: f64) -> bool {
    return (bitcast<u64>(v) & 0x7ffffffffffffffflu) > 0x7ff0000000000000lu;
}

fn f64_inf(v: f64) -> bool {
    return (bitcast<u64>(v) & 0x7ffffffffffffffflu) == 0x7ff0000000000000lu;
}

// 2^k for -1022 <= k <= 1023.
fn f64_pow2(k: i32) -> f64 {
    return bitcast<f64>(u64(u32(k + 1023)) << 52u);
}

// e^v: v = k ln 2 + r with ln 2 split in two (Cody-Waite), |r| <= ln 2 / 2,
// e^r by its Taylor polynomial to degree 13 (truncation below 1e-17), then
// the scale 2^k applied as two factors so a subnormal result rounds once.
fn f64_exp(v: f64) -> f64 {
    if f64_nan(v) { return v; }
    if v > f64(709.782712893384) { return bitcast<f64>(0x7ff0000000000000lu); }
    if v < f64(-745.1332191019412) { return f64(0); }
    let k = round(v * f64(1.4426950408889634));
    var r = fma(-k, f64(6.93147180369123816490e-01), v);
    r = fma(-k, f64(1.90821492927058770002e-10), r);
    var p = f64(1.0 / 6227020800.0);
    p = fma(p, r, f64(1.0 / 479001600.0));
    p = fma(p, r, f64(1.0 / 39916800.0));
    p = fma(p, r, f64(1.0 / 3628800.0));
    p = fma(p, r, f64(1.0 / 362880.0));
    p = fma(p, r, f64(1.0 / 40320.0));
    p = fma(p, r, f64(1.0 / 5040.0));
    p = fma(p, r, f64(1.0 / 720.0));
    p = fma(p, r, f64(1.0 / 120.0));
    p = fma(p, r, f64(1.0 / 24.0));
    p = fma(p, r, f64(1.0 / 6.0));
    p = fma(p, r, f64(0.5));
    p = fma(p, r, f64(1.0));
    p = fma(p, r, f64(1.0));
    let ki = i32(k);
    let k1 = ki / 2;
    return p * f64_pow2(k1) * f64_pow2(ki - k1);
}

// ln v: v = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with
// s = (m - 1) / (m + 1), |s| < 0.172, by its odd series to s^25; plus e ln 2
// (split in two). Subnormals are scaled into the normal range first.
fn f64_ln(v: f64) -> f64 {
    if f64_nan(v) { return v; }
    if v == f64(0) { return bitcast<f64>(0xfff0000000000000lu); }
    if v < f64(0) { return bitcast<f64>(0x7ff8000000000000lu); }
    if f64_inf(v) { return v; }
    var x = v;
    var e = 0;
    if (bitcast<u64>(x) & 0x7ff0000000000000lu) == 0lu {
        x = x * f64_pow2(54);
        e = -54;
    }
    let b = bitcast<u64>(x);
    e += i32(u32(b >> 52u) & 0x7ffu) - 1023;
    var m = bitcast<f64>((b & 0x000ffffffffffffflu) | 0x3ff0000000000000lu);
    if m > f64(1.4142135623730951) {
        m = m * f64(0.5);
        e += 1;
    }
    let s = (m - f64(1)) / (m + f64(1));
    let s2 = s * s;
    var q = f64(1.0 / 25.0);
    q = fma(q, s2, f64(1.0 / 23.0));
    q = fma(q, s2, f64(1.0 / 21.0));
    q = fma(q, s2, f64(1.0 / 19.0));
    q = fma(q, s2, f64(1.0 / 17.0));
    q = fma(q, s2, f64(1.0 / 15.0));
    q = fma(q, s2, f64(1.0 / 13.0));
    q = fma(q, s2, f64(1.0 / 11.0));
    q = fma(q, s2, f64(1.0 / 9.0));
    q = fma(q, s2, f64(1.0 / 7.0));
    q = fma(q, s2, f64(1.0 / 5.0));
    q = fma(q, s2, f64(1.0 / 3.0));
    let ln_m = fma(f64(2) * s * s2, q, f64(2) * s);
    let ef = f64(e);
    return fma(ef, f64(6.93147180369123816490e-01), fma(ef, f64(1.90821492927058770002e-10), ln_m));
}
// end f64
