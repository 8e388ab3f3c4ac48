// Histograms: the GPU twin of src/kernels/histogram.rs.
//
// `counts` holds `bins` buckets and then three outlier slots: below
// (u32: unused), above (u32: value >= bins), NaN. Slots are computed exactly
// as the CPU twin does:
//   u32 (KIND 2): v < bins ? v : above
//   f32 (KIND 0): NaN -> nan; -Inf or v < lo -> below; +Inf or v >= hi ->
//                 above; else min(floor((v - lo) * scale), bins - 1), with
//                 scale = f32(bins) / (hi - lo) computed on the host in f32.
//   f64 (KIND 0, T = f64): the same in f64, with lo, hi and scale from
//                 the `*_bits` words (the f64 section).
// NaN and Inf are tested by bits (WGSL assumes finite math).
//
// `shared_hist`: one workgroup histogram in workgroup memory per tile of
// TILE elements, merged into `counts` with global atomics (only nonzero
// slots). `global_hist`: global atomics directly, for bin counts too large
// for workgroup memory. `clear` zeroes `counts` first.

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

var<workgroup> local: array<atomic<u32>, SHARED_SLOTS>;

// begin not-f64
fn slot(v: T) -> u32 {
    let bins = params.bins;
    let b = bitcast<u32>(v);
    if KIND != 0u {
        return select(bins + 1u, b, b < bins);
    }
    let mag = b & 0x7fffffffu;
    if mag > 0x7f800000u {
        return bins + 2u;
    }
    let negative = (b & 0x80000000u) != 0u;
    if mag == 0x7f800000u {
        return select(bins + 1u, bins, negative);
    }
    let f = bitcast<f32>(b);
    if f < params.lo {
        return bins;
    }
    if f >= params.hi {
        return bins + 1u;
    }
    let t = min(floor((f - params.lo) * params.scale), f32(bins - 1u));
    return u32(t);
}
// end not-f64
// begin f64
// f64 bits are read as u64 (SHADER_INT64 comes with tandem's f64 feature).
fn f64_of(w: vec2<u32>) -> T {
    return bitcast<T>((u64(w.y) << 32u) | u64(w.x));
}

fn slot(v: T) -> u32 {
    let bins = params.bins;
    let b = bitcast<u64>(v);
    let mag = b & 0x7ffffffffffffffflu;
    if mag > 0x7ff0000000000000lu {
        return bins + 2u;
    }
    let negative = (b >> 63u) != 0lu;
    if mag == 0x7ff0000000000000lu {
        return select(bins + 1u, bins, negative);
    }
    let lo = f64_of(params.lo_bits);
    if v < lo {
        return bins;
    }
    if v >= f64_of(params.hi_bits) {
        return bins + 1u;
    }
    let t = min(floor((v - lo) * f64_of(params.scale_bits)), T(bins - 1u));
    return u32(t);
}
// end f64

@compute @workgroup_size(WG)
fn clear(id: Ids) {
    let i = global_index(id);
    if i < params.n {
        atomicStore(&counts[i], 0u);
    }
}

@compute @workgroup_size(WG)
fn shared_hist(id: Ids) {
    let g = group_of(id);
    let slots = params.bins + 3u;
    for (var s = id.lid; s < slots; s += WG) {
        atomicStore(&local[s], 0u);
    }
    workgroupBarrier();
    if g < params.groups {
        for (var k = 0u; k < PER_THREAD; k++) {
            let i = g * TILE + k * WG + id.lid;
            if i < params.n {
                atomicAdd(&local[slot(x[i])], 1u);
            }
        }
    }
    workgroupBarrier();
    for (var s = id.lid; s < slots; s += WG) {
        let c = atomicLoad(&local[s]);
        if c != 0u {
            atomicAdd(&counts[s], c);
        }
    }
}

@compute @workgroup_size(WG)
fn global_hist(id: Ids) {
    let g = group_of(id);
    if g >= params.groups {
        return;
    }
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = g * TILE + k * WG + id.lid;
        if i < params.n {
            atomicAdd(&counts[slot(x[i])], 1u);
        }
    }
}
