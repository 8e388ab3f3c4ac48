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
// across the workgroup, and one carry add per level; with subgroups
// (`scan_sg`), a subgroup scan per segment, the scan of the segment totals
// (a subgroup scan and at most WG / size subgroup totals) and the carry.

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
    for (var i = lane; i < sg; i += size) {
        before = before + sums[i];
    }
    return subgroupAdd(before) + within;
}
// variant reduce_sg of reduce: `(id: Ids)` => `(id: Ids, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) size: u32, @builtin(num_subgroups) count: u32)`,
//     `tile_total(id.lid, acc)` => `sg_tile_total(acc, sg, lane, size, count)`

// Scan of one tile plus its carry, from subgroup scans, one workgroup-memory
// write and one read per invocation, and two barriers; the tile is never
// staged in workgroup memory. For subgroups of at least PER_THREAD
// invocations (`scan_device` uses `scan` otherwise).
//
// Invocation rank `r = sg * size + lane` loads (coalesced) the elements
// `k * WG + r` for `k < PER_THREAD`: row `k` of the tile is WG consecutive
// elements, and a subgroup holds a segment of `size` consecutive ones per
// row. Lane `k` of each subgroup keeps its segment `k`'s total; the
// `PER_THREAD * count` totals are scanned across the workgroup in tile
// order (row, then subgroup), and every element adds its segment's
// exclusive prefix, shuffled from lane `k`.
@compute @workgroup_size(WG)
fn scan_sg(
    id: Ids,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
    @builtin(num_subgroups) count: u32,
) {
    let g = group_of(id);
    let r = sg * size + lane;
    let base = g * TILE;
    let exclusive = (params.flags & EXCLUSIVE) != 0u;
    var within: array<T, PER_THREAD>;
    var mine = T(0);
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = base + k * WG + r;
        var v = T(0);
        if i < params.n {
            v = x[i];
        }
        let inclusive = subgroupInclusiveAdd(v);
        mine = select(mine, subgroupShuffle(inclusive, size - 1u), lane == k);
        if exclusive {
            within[k] = subgroupExclusiveAdd(v);
        } else {
            within[k] = inclusive;
        }
    }
    // Segment `(k, sg)` is number `k * count + sg` in tile order.
    let seg = lane * count + sg;
    if lane < PER_THREAD {
        tile[seg] = mine;
    }
    workgroupBarrier();
    // Exclusive scan of the segment totals: invocation `t` takes total `t`.
    let m = PER_THREAD * count;
    var part = T(0);
    if r < m {
        part = tile[r];
    }
    let prefix = sg_invocation_prefix(part, sg, lane, size);
    if r < m {
        tile[r] = prefix;
    }
    workgroupBarrier();
    var before = T(0);
    if lane < PER_THREAD {
        before = tile[seg];
    }
    var c = T(0);
    let has_carry = (params.flags & HAS_CARRY) != 0u;
    if has_carry {
        c = carry[params.tile_offset + g];
    }
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = base + k * WG + r;
        // The segment's prefix (none for the tile's first segment), then
        // the element's within its segment (none for an exclusive scan's
        // first lane).
        var b = subgroupShuffle(before, k);
        var has_b = k > 0u || sg > 0u;
        if has_carry {
            b = select(c, c + b, has_b);
            has_b = true;
        }
        let has_w = !exclusive || lane > 0u;
        var v = T(0);
        if has_b && has_w {
            v = b + within[k];
        } else if has_b {
            v = b;
        } else if has_w {
            v = within[k];
        }
        if i < params.n && g < params.groups {
            out[i] = v;
        }
    }
}
// end subgroups
