// Prefix sums: the GPU twin of src/kernels/scan.rs.
//
// Two ways, chosen by `scan_device` (src/kernels/scan.rs):
// - single pass (`scan_lb`, subgroup devices that are hardware): each tile
//   finds its carry by decoupled look-back with fallback (see the section
//   before `scan_lb`);
// - reduce-then-scan, multi-level, everywhere else (and on lavapipe, where
//   it measured faster):
//   1. `reduce` writes each tile's sum to a partials array;
//   2. the host scans the partials (exclusively) with these same entries,
//      recursively, until one tile holds them all;
//   3. `scan` scans each tile in workgroup memory and adds the tile's carry
//      (its exclusive partial), writing inclusive or exclusive results.
// Integer sums wrap (WGSL integer arithmetic is two's complement). Float
// rounding: 8 sequential adds per invocation, an 8-step Hillis-Steele scan
// across the workgroup, and one carry add per level; with subgroups
// (`scan_sg`), a subgroup scan per segment, the scan of the segment totals
// (a subgroup scan and at most WG / size subgroup totals) and the carry;
// in the single pass, the carry is a chain of one add per earlier tile.

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
    let r = sg * size + lane;
    let g = group_of(id);
    if g >= params.groups {
        return;
    }
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
    let has_carry = (params.flags & HAS_CARRY) != 0u;
    var c = T(0);
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
        if i < params.n {
            out[i] = v;
        }
    }
}

// begin not-f64
// (32-bit values only: a published value is two 16-bit halves.)
// ---- single pass: decoupled look-back with fallback (`scan_lb`) ----
// Each tile publishes its total (AGGREGATE), then, once it knows the sum of
// all tiles before it, that sum plus its total (INCLUSIVE), in `state`
// after the chunks' tile counters. A value is two words, each holding 16
// of its bits under the READY bit, so a reader never combines a stale
// half with a fresh one; zero means not yet published (`state` is zeroed
// before the dispatch). A tile's carry walks back from its predecessor,
// adding AGGREGATEs until it meets an INCLUSIVE. WebGPU promises no
// forward progress between workgroups, so a walk that waits SPIN reads
// in vain reduces the waited-for tile from its input itself (Levien's
// "decoupled fallback") instead of spinning on; a tile of an earlier
// chunk (an earlier dispatch, finished) is always published.
@group(0) @binding(4) var<storage, read_write> state: array<atomic<u32>>;

var<workgroup> lb_tile: u32;
var<workgroup> lb_total: T;
var<workgroup> lb_flag: u32;
var<workgroup> lb_bits: u32;

const READY: u32 = 0x10000u;
const AGGREGATE: u32 = 0u;
const INCLUSIVE: u32 = 2u;
const NOT_READY: u32 = 1u;
// Reads of a predecessor's state before falling back to its input.
override SPIN: u32 = 1024u;

// The first word of tile `t`'s AGGREGATE (`kind` 0) or INCLUSIVE (2).
fn state_slot(t: u32, kind: u32) -> u32 {
    return params.states + 4u * t + kind;
}

fn publish(t: u32, kind: u32, v: T) {
    let bits = bitcast<u32>(v);
    let slot = state_slot(t, kind);
    atomicStore(&state[slot], READY | (bits & 0xffffu));
    atomicStore(&state[slot + 1u], READY | (bits >> 16u));
}

// Whether tile `t`'s `kind` is published (both halves), and its bits.
fn peek(t: u32, kind: u32) -> vec2<u32> {
    let slot = state_slot(t, kind);
    let lo = atomicLoad(&state[slot]);
    let hi = atomicLoad(&state[slot + 1u]);
    let ready = (lo & hi & READY) != 0u;
    return vec2(u32(ready), (lo & 0xffffu) | (hi << 16u));
}

// The sum of tiles `0..t` (t > 0), walking back from `t - 1`.
fn look_back(t: u32, sg: u32, lane: u32, size: u32, count: u32) -> T {
    var acc = T(0);
    var j = t - 1u;
    loop {
        if sg == 0u && lane == 0u {
            var flag = NOT_READY;
            var bits = 0u;
            // A tile of an earlier chunk is read until published (it is:
            // that dispatch has finished); one of this chunk, SPIN times.
            let earlier = j < params.tile_offset;
            for (var s = 0u; s < SPIN || earlier; s++) {
                let inc = peek(j, INCLUSIVE);
                if inc.x != 0u {
                    flag = INCLUSIVE;
                    bits = inc.y;
                    break;
                }
                let agg = peek(j, AGGREGATE);
                if agg.x != 0u {
                    flag = AGGREGATE;
                    bits = agg.y;
                    break;
                }
            }
            lb_flag = flag;
            lb_bits = bits;
        }
        let flag = workgroupUniformLoad(&lb_flag);
        var v: T;
        if flag == NOT_READY {
            // Fallback: tile j's total from its input (in this chunk: tiles
            // of earlier chunks are always published).
            let first = (j - params.tile_offset) * TILE;
            var part = T(0);
            for (var k = 0u; k < PER_THREAD; k++) {
                let i = first + k * WG + sg * size + lane;
                if i < params.n {
                    part = part + x[i];
                }
            }
            v = sg_tile_total(part, sg, lane, size, count);
        } else {
            v = bitcast<T>(lb_bits);
        }
        acc = select(v + acc, v, j == t - 1u);
        // Everyone has read lb_flag and lb_bits before they are rewritten.
        workgroupBarrier();
        if flag == INCLUSIVE || j == 0u {
            break;
        }
        j -= 1u;
    }
    return acc;
}

// The tile this workgroup scans: the next from this dispatch's counter, so
// that a tile's predecessors have all started before it.
fn claim_tile(r: u32) -> u32 {
    if r == 0u {
        lb_tile = atomicAdd(&state[params.counter], 1u);
    }
    return workgroupUniformLoad(&lb_tile);
}

// Publishes tile `t`'s total (invocation 0): as its INCLUSIVE prefix for
// tile 0, else as its AGGREGATE. Whether the tile has a carry (t > 0).
fn publish_total(t: u32, r: u32) -> bool {
    let has_carry = t > 0u;
    if r == 0u {
        publish(t, select(INCLUSIVE, AGGREGATE, has_carry), lb_total);
    }
    return has_carry;
}

// Tile `t`'s carry by look-back; publishes its INCLUSIVE prefix.
fn look_back_and_publish(t: u32, sg: u32, lane: u32, size: u32, count: u32) -> T {
    let c = look_back(t, sg, lane, size, count);
    if sg == 0u && lane == 0u {
        publish(t, INCLUSIVE, c + lb_total);
    }
    return c;
}

// `scan_sg` with the tile from `claim_tile` and its carry by look-back
// instead of from `carry` (invocation m - 1 keeps the tile's total).
// variant scan_lb of scan_sg: `let g = group_of(id);` => `let g = claim_tile(r);`,
//     `let prefix = sg_invocation_prefix(part, sg, lane, size);` => `let prefix = sg_invocation_prefix(part, sg, lane, size); if r == m - 1u { lb_total = prefix + part; }`,
//     `let has_carry = (params.flags & HAS_CARRY) != 0u;` => `let has_carry = publish_total(params.tile_offset + g, r);`,
//     `c = carry[params.tile_offset + g];` => `c = look_back_and_publish(params.tile_offset + g, sg, lane, size, count);`
// end not-f64
// end subgroups
