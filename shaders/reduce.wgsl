// Reductions: the GPU twin of src/kernels/reduce.rs.
//
// Each workgroup reduces one tile of TILE = WG * PER_THREAD elements to one
// partial; the host launches passes over the partials until one is left.
// Sums add 8 strided elements per thread, then a tree over the workgroup, so
// float rounding error grows like log2(n).
//
// Min/max work on an order-preserving key `K` (u32; u64 for f64): integer
// order of keys is the numeric order of values, -0.0 < +0.0. NaNs map to the
// identity, so they are ignored. Arg-reductions carry (key, index) pairs `P`
// and keep the first index among equal keys. f64 has no subgroup entry
// points (64-bit subgroup arithmetic is an extension of its own).

override IS_MAX: bool = false;

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> y: array<T>;
@group(0) @binding(3) var<storage, read_write> out_t: array<T>;
// begin not-f64
alias K = u32;
alias P = vec2<u32>;

fn key_identity() -> K {
    return select(0xffffffffu, 0u, IS_MAX);
}

fn is_nan(v: T) -> bool {
    return KIND == 0u && (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn key(v: T) -> K {
    let b = bitcast<u32>(v);
    if KIND == 0u {
        if (b & 0x7fffffffu) > 0x7f800000u { return key_identity(); }
        return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
    }
    if KIND == 1u {
        return b ^ 0x80000000u;
    }
    return b;
}
// end not-f64
// begin f64
// f64 bits are read as u64 (SHADER_INT64 comes with tandem's f64 feature).
alias K = u64;
struct P {
    x: u64,
    y: u32,
}

fn key_identity() -> K {
    return select(0xfffffffffffffffflu, 0lu, IS_MAX);
}

fn is_nan(v: T) -> bool {
    return (bitcast<u64>(v) & 0x7ffffffffffffffflu) > 0x7ff0000000000000lu;
}

fn key(v: T) -> K {
    if is_nan(v) { return key_identity(); }
    let b = bitcast<u64>(v);
    return select(b | 0x8000000000000000lu, ~b, (b >> 63u) != 0lu);
}
// end f64

@group(0) @binding(4) var<storage, read> in_keys: array<K>;
@group(0) @binding(5) var<storage, read_write> out_keys: array<K>;
@group(0) @binding(6) var<storage, read> in_pairs: array<P>;
@group(0) @binding(7) var<storage, read_write> out_pairs: array<P>;

var<workgroup> sh_t: array<T, WG>;
var<workgroup> sh_k: array<K, WG>;
var<workgroup> sh_p: array<P, WG>;

fn pick(a: K, b: K) -> K {
    return select(min(a, b), max(a, b), IS_MAX);
}

// The better of two (key, index) pairs: extreme key, then the smaller index.
fn better(a: P, b: P) -> P {
    if a.x != b.x {
        let smaller = b.x < a.x;
        let larger = b.x > a.x;
        if select(smaller, larger, IS_MAX) { return b; }
        return a;
    }
    if b.y < a.y { return b; }
    return a;
}

// The workgroup's sum of `v` (every invocation returns it). The key and
// pair trees are this function with the operation and element replaced.
fn tree_sum(lid: u32, v: T) -> T {
    sh_t[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            sh_t[lid] = sh_t[lid] + sh_t[lid + s];
        }
        workgroupBarrier();
    }
    return sh_t[0];
}
// variant tree_keys of tree_sum: `v: T) -> T` => `v: K) -> K`, `sh_t` => `sh_k`,
//     `sh_k[lid] + sh_k[lid + s]` => `pick(sh_k[lid], sh_k[lid + s])`
// variant tree_pairs of tree_sum: `v: T) -> T` => `v: P) -> P`,
//     `sh_t` => `sh_p`, `sh_p[lid] + sh_p[lid + s]` => `better(sh_p[lid], sh_p[lid + s])`

// Element i of x as an arg-reduction candidate: (key, global index), or
// the identity for a NaN, which never wins.
fn arg_candidate(i: u32) -> P {
    let v = x[i];
    if is_nan(v) {
        return P(key_identity(), 0xffffffffu);
    }
    return P(key(v), params.base + i);
}

// Sum of x (also the later passes of sum and dot, over T partials). Every
// other entry point is this one with its accumulator, step, tree and
// output replaced (the `variant` lines below; `gpu::expand_variants`).
@compute @workgroup_size(WG)
fn sum(id: Ids) {
    let g = group_of(id);
    var acc = T(0);
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = g * TILE + k * WG + id.lid;
        if i < params.n {
            acc = acc + x[i];
        }
    }
    let total = tree_sum(id.lid, acc);
    if id.lid == 0u && g < params.groups {
        out_t[params.out_offset + g] = total;
    }
}
// First pass of the dot product: sum of x * y.
// variant dot of sum: `acc + x[i]` => `acc + x[i] * y[i]`
// First pass of min/max: elements to keys; later passes over key partials.
// variant extreme_first of sum: `T(0)` => `key_identity()`, `acc + x[i]` => `pick(acc, key(x[i]))`,
//     `tree_sum` => `tree_keys`, `out_t` => `out_keys`
// variant extreme_next of extreme_first: `key(x[i])` => `in_keys[i]`
// First pass of argmin/argmax: elements to (key, global index) pairs; later
// passes over pair partials.
// variant arg_first of sum: `T(0)` => `P(key_identity(), 0xffffffffu)`,
//     `acc + x[i]` => `better(acc, arg_candidate(i))`, `tree_sum` => `tree_pairs`,
//     `out_t` => `out_pairs`
// variant arg_next of arg_first: `arg_candidate(i)` => `in_pairs[i]`

// begin not-f64
// begin subgroups
// Subgroup trees, kept only where the device has SUBGROUP (the section is
// dropped before compiling otherwise): each subgroup reduces its values
// with one subgroup operation, writes one partial to workgroup memory, and
// every subgroup then reduces those partials the same way, so there is one
// barrier instead of log2(WG). Subgroup sizes vary (8 on lavapipe, 32 on
// NVIDIA, 64 on some AMD): nothing here assumes one.
fn sg_sum(v: T) -> T {
    return subgroupAdd(v);
}

fn sg_keys(v: u32) -> u32 {
    return select(subgroupMin(v), subgroupMax(v), IS_MAX);
}

// The extreme key, then the smallest index among the pairs that hold it.
fn sg_pairs(v: vec2<u32>) -> vec2<u32> {
    let k = sg_keys(v.x);
    return vec2(k, subgroupMin(select(0xffffffffu, v.y, v.x == k)));
}

fn sg_tree_sum(v: T, sg: u32, lane: u32, size: u32, count: u32) -> T {
    let s = sg_sum(v);
    if lane == 0u {
        sh_t[sg] = s;
    }
    workgroupBarrier();
    var part = T(0);
    for (var i = lane; i < count; i += size) {
        part = part + sh_t[i];
    }
    return sg_sum(part);
}
// variant sg_tree_keys of sg_tree_sum: `v: T,` => `v: u32,`, `) -> T {` => `) -> u32 {`,
//     `sg_sum` => `sg_keys`, `sh_t` => `sh_k`, `T(0)` => `key_identity()`,
//     `part + sh_k[i]` => `pick(part, sh_k[i])`
// variant sg_tree_pairs of sg_tree_sum: `v: T,` => `v: vec2<u32>,`,
//     `) -> T {` => `) -> vec2<u32> {`, `sg_sum` => `sg_pairs`, `sh_t` => `sh_p`,
//     `T(0)` => `vec2(key_identity(), 0xffffffffu)`, `part + sh_p[i]` => `better(part, sh_p[i])`

// Each entry point with its workgroup tree replaced by the subgroup one.
// variant sum_sg of sum: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tree_sum(id.lid, acc)` => `sg_tree_sum(acc, sg, lane, size, count)`
// variant dot_sg of dot: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tree_sum(id.lid, acc)` => `sg_tree_sum(acc, sg, lane, size, count)`
// variant extreme_first_sg of extreme_first: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tree_keys(id.lid, acc)` => `sg_tree_keys(acc, sg, lane, size, count)`
// variant extreme_next_sg of extreme_next: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tree_keys(id.lid, acc)` => `sg_tree_keys(acc, sg, lane, size, count)`
// variant arg_first_sg of arg_first: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tree_pairs(id.lid, acc)` => `sg_tree_pairs(acc, sg, lane, size, count)`
// variant arg_next_sg of arg_next: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tree_pairs(id.lid, acc)` => `sg_tree_pairs(acc, sg, lane, size, count)`
// end subgroups
// end not-f64
