// Prefix sums: the GPU twin of src/kernels/scan.rs.
//
// Reduce-then-scan, multi-level (no decoupled look-back: that needs
// forward-progress guarantees between workgroups that WebGPU does not give).
// A tile is TILE = WG * PER_THREAD elements, one workgroup each:
//   1. `reduce` writes each tile's sum to a partials array;
//   2. the host scans the partials (exclusively) with these same entries,
//      recursively, until one tile holds them all;
//   3. `scan` scans each tile in workgroup memory and adds the tile's carry
//      (its exclusive partial), writing inclusive or exclusive results.
// Integer sums wrap (WGSL integer arithmetic is two's complement). Float
// rounding: 8 sequential adds per invocation, an 8-step Hillis-Steele scan
// across the workgroup, and one carry add per level.

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> carry: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

var<workgroup> tile: array<T, TILE>;
var<workgroup> sums: array<T, WG>;

// The workgroup's sum of `acc` (every invocation returns it).
fn tile_total(lid: u32, acc: T) -> T {
    sums[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            sums[lid] = sums[lid] + sums[lid + s];
        }
        workgroupBarrier();
    }
    return sums[0];
}

// The sum of `acc` over the invocations before `lid` (T(0) for the first):
// an inclusive Hillis-Steele scan of the invocation totals.
fn invocation_prefix(lid: u32, acc: T) -> T {
    var total = acc;
    sums[lid] = total;
    workgroupBarrier();
    for (var s = 1u; s < WG; s <<= 1u) {
        var add = T(0);
        if lid >= s {
            add = sums[lid - s];
        }
        workgroupBarrier();
        total = add + total;
        sums[lid] = total;
        workgroupBarrier();
    }
    var prefix = T(0);
    if lid > 0u {
        prefix = sums[lid - 1u];
    }
    return prefix;
}

// Sum of one tile into out[tile_offset + g].
@compute @workgroup_size(WG)
fn reduce(id: Ids) {
    let g = group_of(id);
    var acc = T(0);
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = g * TILE + k * WG + id.lid;
        if i < params.n {
            acc = acc + x[i];
        }
    }
    let total = tile_total(id.lid, acc);
    if id.lid == 0u && g < params.groups {
        out[params.tile_offset + g] = total;
    }
}

// Scan of one tile plus its carry.
@compute @workgroup_size(WG)
fn scan(id: Ids) {
    let g = group_of(id);
    let base = g * TILE;
    // Coalesced load into workgroup memory.
    for (var k = 0u; k < PER_THREAD; k++) {
        let j = k * WG + id.lid;
        var v = T(0);
        if base + j < params.n {
            v = x[base + j];
        }
        tile[j] = v;
    }
    workgroupBarrier();
    // Each invocation scans its PER_THREAD consecutive elements.
    var local: array<T, PER_THREAD>;
    var acc = T(0);
    for (var k = 0u; k < PER_THREAD; k++) {
        acc = acc + tile[id.lid * PER_THREAD + k];
        local[k] = acc;
    }
    // Exclusive prefix of this invocation, plus the tile's carry.
    var prefix = invocation_prefix(id.lid, acc);
    var has_prefix = id.lid > 0u;
    if (params.flags & HAS_CARRY) != 0u {
        let c = carry[params.tile_offset + g];
        prefix = select(c, c + prefix, has_prefix);
        has_prefix = true;
    }
    let exclusive = (params.flags & EXCLUSIVE) != 0u;
    for (var k = 0u; k < PER_THREAD; k++) {
        var v: T;
        if exclusive {
            if k == 0u {
                v = prefix;
            } else {
                v = select(local[k - 1u], prefix + local[k - 1u], has_prefix);
            }
        } else {
            v = select(local[k], prefix + local[k], has_prefix);
        }
        tile[id.lid * PER_THREAD + k] = v;
    }
    workgroupBarrier();
    // Coalesced store.
    if g < params.groups {
        for (var k = 0u; k < PER_THREAD; k++) {
            let j = k * WG + id.lid;
            if base + j < params.n {
                out[base + j] = tile[j];
            }
        }
    }
}

// begin subgroups
// Where the device has SUBGROUP: the workgroup total and the invocation
// prefixes from subgroup operations and one barrier, instead of log2(WG)
// barriers. An invocation's rank in the scan is `sg * size + lane` (its
// subgroup, then its lane), so the result never depends on how the
// hardware maps local indices to subgroups; subgroup sizes are read, never
// assumed.
fn sg_tile_total(acc: T, sg: u32, lane: u32, size: u32, count: u32) -> T {
    let s = subgroupAdd(acc);
    if lane == 0u {
        sums[sg] = s;
    }
    workgroupBarrier();
    var t = T(0);
    for (var i = lane; i < count; i += size) {
        t = t + sums[i];
    }
    return subgroupAdd(t);
}

fn sg_invocation_prefix(acc: T, sg: u32, lane: u32, size: u32) -> T {
    let within = subgroupExclusiveAdd(acc);
    if lane == size - 1u {
        sums[sg] = within + acc;
    }
    workgroupBarrier();
    var before = T(0);
    for (var i = 0u; i < sg; i++) {
        before = before + sums[i];
    }
    return before + within;
}
// variant reduce_sg of reduce: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tile_total(id.lid, acc)` => `sg_tile_total(acc, sg, lane, size, count)`
// variant scan_sg of scan: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32)`,
//     `invocation_prefix(id.lid, acc)` => `sg_invocation_prefix(acc, sg, lane, size)`,
//     `id.lid * PER_THREAD` => `(sg * size + lane) * PER_THREAD`, `id.lid > 0u` => `sg * size + lane > 0u`
// end subgroups
