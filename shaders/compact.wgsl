// Stream compaction: the GPU twin of src/kernels/compact.rs.
//
// Flag -> scan -> scatter, with the flags recomputed rather than stored:
//   1. `count` writes the number of kept elements of each tile of
//      TILE = WG * PER_THREAD elements;
//   2. the host scans the counts inclusively with scan.wgsl;
//   3. `scatter` recomputes each tile's flags, scans them across the
//      workgroup, and writes the kept elements, in order, after the kept
//      elements of all earlier tiles.
// `mode` 0 keeps x[i] where mask[i] != 0; modes 1..6 compare x[i] with the
// threshold (<, <=, >, >=, ==, !=). NaN (tested by bits: WGSL assumes finite
// math) compares false, so `!=` keeps it and the others drop it. The mode
// is the pipeline constant MODE (not a uniform): a CPU driver such as
// lavapipe then compiles one comparison, not every case under lane masks.

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<T>;

override MODE: u32 = 0u;

var<workgroup> wg_count: atomic<u32>;
var<workgroup> sums: array<u32, WG>;

// begin not-f64
fn is_nan(v: T) -> bool {
    return KIND == 0u && (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn threshold() -> T {
    return bitcast<T>(params.threshold);
}
// end not-f64
// begin f64
// f64 bits are read as u64 (SHADER_INT64 comes with tandem's f64 feature).
fn is_nan(v: T) -> bool {
    return (bitcast<u64>(v) & 0x7ffffffffffffffflu) > 0x7ff0000000000000lu;
}

fn threshold() -> T {
    return bitcast<T>((u64(params.threshold_hi) << 32u) | u64(params.threshold));
}
// end f64

fn keep(i: u32) -> bool {
    if MODE == 0u {
        return mask[i] != 0u;
    }
    return keep_value(i, x[i]);
}

// `keep(i)` where `v` is already `x[i]`.
fn keep_value(i: u32, v: T) -> bool {
    if MODE == 0u {
        return mask[i] != 0u;
    }
    let t = threshold();
    if is_nan(v) || is_nan(t) {
        return MODE == 6u;
    }
    switch MODE {
        case 1u: { return v < t; }
        case 2u: { return v <= t; }
        case 3u: { return v > t; }
        case 4u: { return v >= t; }
        case 5u: { return v == t; }
        default: { return v != t; }
    }
}

// Kept elements of each tile into counts[tile_offset + g].
@compute @workgroup_size(WG)
fn count(id: Ids) {
    let g = group_of(id);
    if id.lid == 0u {
        atomicStore(&wg_count, 0u);
    }
    workgroupBarrier();
    var c = 0u;
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = g * TILE + k * WG + id.lid;
        if i < params.n && keep(i) {
            c += 1u;
        }
    }
    if c != 0u {
        atomicAdd(&wg_count, c);
    }
    workgroupBarrier();
    if id.lid == 0u && g < params.groups {
        counts[params.tile_offset + g] = atomicLoad(&wg_count);
    }
}

// The sum of `c` over the invocations before `lid`: an inclusive
// Hillis-Steele scan of the per-invocation counts.
fn count_prefix(lid: u32, c: u32) -> u32 {
    var total = c;
    sums[lid] = total;
    workgroupBarrier();
    for (var s = 1u; s < WG; s <<= 1u) {
        var add = 0u;
        if lid >= s {
            add = sums[lid - s];
        }
        workgroupBarrier();
        total += add;
        sums[lid] = total;
        workgroupBarrier();
    }
    return total - c;
}

// Kept elements of each tile to their place in `out`.
@compute @workgroup_size(WG)
fn scatter(id: Ids) {
    let g = group_of(id);
    // Each invocation owns PER_THREAD consecutive elements, so the order of
    // invocations is the order of elements.
    let first = g * TILE + id.lid * PER_THREAD;
    var flags = 0u;
    var c = 0u;
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = first + k;
        if i < params.n && keep(i) {
            flags |= 1u << k;
            c += 1u;
        }
    }
    // Kept elements of the invocations before this one.
    var dst = count_prefix(id.lid, c);
    if g >= params.groups || flags == 0u {
        return;
    }
    let tile = params.tile_offset + g;
    if tile > 0u {
        dst += offsets[tile - 1u];
    }
    dst -= params.out_base;
    for (var k = 0u; k < PER_THREAD; k++) {
        if (flags & (1u << k)) != 0u {
            out[dst] = x[first + k];
            dst += 1u;
        }
    }
}

// begin subgroups
// Where the device has SUBGROUP, with subgroups of at least PER_THREAD
// invocations: the tile's counts and offsets from subgroup operations, as
// scan.wgsl's `scan_sg` does. Invocation rank `r = sg * size + lane` (so
// no mapping of local indices to subgroups is assumed) takes the elements
// `k * WG + r` for `k < PER_THREAD` (coalesced): row `k` of the tile, in
// which its subgroup holds a segment of `size` consecutive elements.
var<workgroup> segs: array<u32, WG>;

// The sum of `c` over the invocations of lower rank.
fn sg_count_prefix(c: u32, sg: u32, lane: u32, size: u32) -> u32 {
    let within = subgroupExclusiveAdd(c);
    if lane == size - 1u {
        sums[sg] = within + c;
    }
    workgroupBarrier();
    var before = 0u;
    for (var i = lane; i < sg; i += size) {
        before += sums[i];
    }
    return subgroupAdd(before) + within;
}

@compute @workgroup_size(WG)
fn count_sg(
    id: Ids,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
    @builtin(num_subgroups) count: u32,
) {
    let g = group_of(id);
    let r = sg * size + lane;
    // Loads at a clamped index, so no load waits on a branch.
    var c = 0u;
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = g * TILE + k * WG + r;
        let kept = keep(min(i, params.n - 1u));
        c += u32(kept && i < params.n);
    }
    let s = subgroupAdd(c);
    if lane == 0u {
        sums[sg] = s;
    }
    workgroupBarrier();
    var t = 0u;
    for (var i = lane; i < count; i += size) {
        t += sums[i];
    }
    t = subgroupAdd(t);
    if r == 0u && g < params.groups {
        counts[params.tile_offset + g] = t;
    }
}

@compute @workgroup_size(WG)
fn scatter_sg(
    id: Ids,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
    @builtin(num_subgroups) count: u32,
) {
    let g = group_of(id);
    let r = sg * size + lane;
    let base = g * TILE;
    // Per row: whether this element is kept, and the kept elements of the
    // lanes before it in its segment; lane `k` keeps segment `k`'s count.
    var flags = 0u;
    var within: array<u32, PER_THREAD>;
    var values: array<T, PER_THREAD>;
    var mine = 0u;
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = base + k * WG + r;
        let j = min(i, params.n - 1u);
        let v = x[j];
        values[k] = v;
        let f = u32(keep_value(j, v) && i < params.n);
        flags |= f << k;
        within[k] = subgroupExclusiveAdd(f);
        mine = select(mine, subgroupAdd(f), lane == k);
    }
    // Segment `(k, sg)` is number `k * count + sg` in tile order; scan the
    // segment counts across the workgroup (invocation `t` takes count `t`).
    let seg = lane * count + sg;
    if lane < PER_THREAD {
        segs[seg] = mine;
    }
    workgroupBarrier();
    let m = PER_THREAD * count;
    var part = 0u;
    if r < m {
        part = segs[r];
    }
    let prefix = sg_count_prefix(part, sg, lane, size);
    if r < m {
        segs[r] = prefix;
    }
    workgroupBarrier();
    var before = 0u;
    if lane < PER_THREAD {
        before = segs[seg];
    }
    let tile = params.tile_offset + g;
    var dst = 0u;
    if tile > 0u {
        dst = offsets[tile - 1u];
    }
    dst -= params.out_base;
    // Every element is loaded and stored: a dropped one to the junk slot.
    // No branch depends on the data (a CPU driver such as lavapipe pays
    // for each unpredictable one per lane).
    for (var k = 0u; k < PER_THREAD; k++) {
        let b = subgroupShuffle(before, k);
        let i = base + k * WG + r;
        if g < params.groups && i < params.n {
            let kept = (flags & (1u << k)) != 0u;
            out[select(params.junk, dst + b + within[k], kept)] = values[k];
        }
    }
}
// end subgroups
