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

alias T = f32;

// The element kind (0 float, 1 signed, 2 unsigned): unused, since addition
// is the same instruction for each, but every tandem shader declares it.
override KIND: u32 = 0u;

const WG: u32 = 256u;
const PER_THREAD: u32 = 8u;
const TILE: u32 = 2048u;

// Bits of `Params::flags`.
const EXCLUSIVE: u32 = 1u;
const HAS_CARRY: u32 = 2u;

struct Params {
    // Elements in this dispatch's input range.
    n: u32,
    // Index (in `carry`, or in `out` for `reduce`) of this dispatch's first tile.
    tile_offset: u32,
    // Workgroups that hold real tiles (folded dispatches launch a few more).
    groups: u32,
    // EXCLUSIVE | HAS_CARRY.
    flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> carry: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

var<workgroup> tile: array<T, TILE>;
var<workgroup> sums: array<T, WG>;

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Sum of one tile into out[tile_offset + g].
@compute @workgroup_size(WG)
fn reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = group_index(wid, nwg);
    var acc = T(0);
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = g * TILE + k * WG + lid;
        if i < params.n {
            acc = acc + x[i];
        }
    }
    sums[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            sums[lid] = sums[lid] + sums[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u && g < params.groups {
        out[params.tile_offset + g] = sums[0];
    }
}

// Scan of one tile plus its carry.
@compute @workgroup_size(WG)
fn scan(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = group_index(wid, nwg);
    let base = g * TILE;
    // Coalesced load into workgroup memory.
    for (var k = 0u; k < PER_THREAD; k++) {
        let j = k * WG + lid;
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
        acc = acc + tile[lid * PER_THREAD + k];
        local[k] = acc;
    }
    // Inclusive Hillis-Steele scan of the invocation totals.
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
    // Exclusive prefix of this invocation, plus the tile's carry.
    var prefix = T(0);
    var has_prefix = lid > 0u;
    if has_prefix {
        prefix = sums[lid - 1u];
    }
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
        tile[lid * PER_THREAD + k] = v;
    }
    workgroupBarrier();
    // Coalesced store.
    if g < params.groups {
        for (var k = 0u; k < PER_THREAD; k++) {
            let j = k * WG + lid;
            if base + j < params.n {
                out[base + j] = tile[j];
            }
        }
    }
}
