// Radix sort: the GPU twin of src/kernels/sort/mod.rs.
//
// LSD radix sort of 32-bit keys, 8-bit digits, four passes. An input
// within one storage binding takes the onesweep passes (the `onesweep`
// section below: five dispatches in all). Otherwise the host encodes, for
// each pass (shift = 0, 8, 16, 24):
//   1. `histogram`: each workgroup counts the digits of its tile of TILE
//      keys in workgroup atomics and writes them digit-major into
//      `table[digit * groups + group]`.
//   2. `scan_one`, or `scan_reduce` / `scan_down` past ONE_SCAN_MAX
//      entries: an exclusive scan of the whole table (in one workgroup, or
//      reduce-then-scan recursing over block sums), so that
//      `table[d * groups + g]` becomes the first output slot of the keys of
//      digit d in tile g.
//   3. `scatter_keys` / `scatter_pairs`: each workgroup reloads its tile,
//      sorts it stably by the digit in workgroup memory (four 2-bit split
//      rounds: a packed per-thread bucket count and one workgroup scan per
//      round), and writes key (and value) at table slot + rank within the
//      digit. Stable within the tile, tiles in order: the pass is stable.
//
// Keys are the order-preserving u32 image of the element bits (`to_key`):
// the first pass transforms on read, the last transforms back on write, so
// output elements are the input's bits, permuted. Where the device has
// SUBGROUP with subgroups of 8 or more, the scatters rank the tile in one
// sweep of ballots instead of the split rounds (`scatter_*_sg`, the
// `subgroups` section below).
//
// Past one storage binding: `histogram` and the scatters run once per input
// chunk of whole tiles (tiles g0 .. g_end; `keys_in`/`vals_in` are bound
// from the chunk's first key), and each scatter writes only the slots in
// its output window out_lo .. out_hi (`keys_out`/`vals_out` are bound from
// out_lo), so a pass scatters once per chunk and window. The digit table is
// bound whole while it fits one binding; past that each chunk has a part of
// its own (FLAG_LOCAL: `table_slot`), scanned on its own, and
// `chunk_heads` / `chunk_bases` give each chunk's digit bases across
// chunks. An input within one binding is one chunk and one window.

const ITEMS: u32 = 4u;
const RADIX: u32 = 256u;
// The scatters run SWG invocations of SITEMS keys each (one tile): a
// software driver runs a workgroup's invocations in SIMD groups it switches
// between at every barrier, and the local sort's eight-odd barriers per
// round cost it more than all the arithmetic; a quarter of the groups
// switch a quarter as often. (On hardware, 64 invocations of 16 keys is a
// common radix-sort shape.)
const SWG: u32 = 64u;
const SITEMS: u32 = 16u;

@group(0) @binding(1) var<storage, read> keys_in: array<u32>;
@group(0) @binding(2) var<storage, read> vals_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(4) var<storage, read_write> vals_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> table: array<u32>;
@group(0) @binding(6) var<storage, read_write> sums: array<u32>;

var<workgroup> sh_hist: array<atomic<u32>, RADIX>;
var<workgroup> sh_scan: array<u32, WG>;
var<workgroup> sh_scan2: array<vec2<u32>, SWG>;
var<workgroup> sh_keys: array<u32, TILE>;
var<workgroup> sh_vals: array<u32, TILE>;
var<workgroup> sh_start: array<u32, RADIX>;

// Order-preserving key of element bits. Floats: negatives are flipped,
// positives get the sign bit (so -0.0 < +0.0), then the whole range is
// rotated down by 0x007fffff, which moves the negative NaNs (keys
// 0..0x007ffffe before rotation) past the positive NaNs: every NaN sorts
// after +Inf. A bijection: `from_key` restores the exact bits.
fn to_key(b: u32) -> u32 {
    if KIND == 0u {
        let s = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
        return s - 0x007fffffu;
    }
    if KIND == 1u {
        return b ^ 0x80000000u;
    }
    return b;
}

fn from_key(k: u32) -> u32 {
    if KIND == 0u {
        let s = k + 0x007fffffu;
        return select(~s, s & 0x7fffffffu, (s & 0x80000000u) != 0u);
    }
    if KIND == 1u {
        return k ^ 0x80000000u;
    }
    return k;
}

// Key i of the whole input (within this dispatch's chunk).
fn load_key(i: u32) -> u32 {
    let b = keys_in[i - params.g0 * TILE];
    if (params.flags & FLAG_FIRST) != 0u {
        return to_key(b);
    }
    return b;
}

fn store_bits(k: u32) -> u32 {
    if (params.flags & FLAG_LAST) != 0u {
        return from_key(k);
    }
    return k;
}

fn digit(k: u32) -> u32 {
    return (k >> params.shift) & 0xffu;
}

// Scans take three barriers, not a tree's 2·log2(WG): SPANS invocations
// each scan SPAN consecutive entries serially, one scans the SPANS
// totals, then every invocation adds its span's prefix. (Barriers are what
// a software driver pays most for.)
const SPAN: u32 = 16u;
const SPANS: u32 = 16u;
var<workgroup> sh_part: array<u32, 17>;
// The same split of the scatters' SWG invocations: SPANS2 spans of SPAN2.
const SPAN2: u32 = 8u;
const SPANS2: u32 = 8u;
var<workgroup> sh_part2: array<vec2<u32>, 9>;

// Exclusive scan of one u32 per invocation: (exclusive prefix, total).
fn wg_scan(lid: u32, x: u32) -> vec2<u32> {
    sh_scan[lid] = x;
    workgroupBarrier();
    if lid < SPANS {
        var run = 0u;
        for (var j = 0u; j < SPAN; j++) {
            let v = sh_scan[lid * SPAN + j];
            sh_scan[lid * SPAN + j] = run;
            run += v;
        }
        sh_part[lid] = run;
    }
    workgroupBarrier();
    if lid == 0u {
        var run = 0u;
        for (var j = 0u; j < SPANS; j++) {
            let v = sh_part[j];
            sh_part[j] = run;
            run += v;
        }
        sh_part[SPANS] = run;
    }
    workgroupBarrier();
    let r = vec2(sh_scan[lid] + sh_part[lid / SPAN], sh_part[SPANS]);
    workgroupBarrier();
    return r;
}

// The same over the scatters' SWG invocations, of packed vec2 counts:
// (exclusive prefix, total).
fn wg_scan2(lid: u32, x: vec2<u32>) -> array<vec2<u32>, 2> {
    sh_scan2[lid] = x;
    workgroupBarrier();
    if lid < SPANS2 {
        var run = vec2(0u);
        for (var j = 0u; j < SPAN2; j++) {
            let v = sh_scan2[lid * SPAN2 + j];
            sh_scan2[lid * SPAN2 + j] = run;
            run += v;
        }
        sh_part2[lid] = run;
    }
    workgroupBarrier();
    if lid == 0u {
        var run = vec2(0u);
        for (var j = 0u; j < SPANS2; j++) {
            let v = sh_part2[j];
            sh_part2[j] = run;
            run += v;
        }
        sh_part2[SPANS2] = run;
    }
    workgroupBarrier();
    let r = array(sh_scan2[lid] + sh_part2[lid / SPAN2], sh_part2[SPANS2]);
    workgroupBarrier();
    return r;
}

// One stable 2-bit split round over the tile: invocation `lid` holds the
// keys at tile positions lid * SITEMS .. + SITEMS (in `kk`); returns where
// each goes so the tile is ordered by bits `bit..bit+2` of the digit, ties
// in their current order. Bucket counts are packed four 16-bit fields to a
// vec2 (a tile has at most 1024 keys), so one scan serves all four.
fn split_positions(lid: u32, kk: array<u32, SITEMS>, bit: u32) -> array<u32, SITEMS> {
    let sh = params.shift + bit;
    var c = vec4<u32>(0u);
    for (var j = 0u; j < SITEMS; j++) {
        let b = (kk[j] >> sh) & 3u;
        c[b] += 1u;
    }
    let packed = vec2(c.x | (c.y << 16u), c.z | (c.w << 16u));
    let r = wg_scan2(lid, packed);
    let excl = r[0];
    let total = r[1];
    let t0 = total.x & 0xffffu;
    let t1 = total.x >> 16u;
    let t2 = total.y & 0xffffu;
    var start = vec4(0u, t0, t0 + t1, t0 + t1 + t2)
        + vec4(excl.x & 0xffffu, excl.x >> 16u, excl.y & 0xffffu, excl.y >> 16u);
    var pos: array<u32, SITEMS>;
    for (var j = 0u; j < SITEMS; j++) {
        let b = (kk[j] >> sh) & 3u;
        pos[j] = start[b];
        start[b] += 1u;
    }
    return pos;
}

// Records, for each digit present in the sorted tile, its first position.
fn digit_starts(lid: u32) {
    for (var k = 0u; k < SITEMS; k++) {
        let p = k * SWG + lid;
        let d = digit(sh_keys[p]);
        if p == 0u || digit(sh_keys[p - 1u]) != d {
            sh_start[d] = p;
        }
    }
    workgroupBarrier();
}

// Where tile g's count of digit d sits in `table`: digit-major over all
// tiles, or, with FLAG_LOCAL (a table larger than one binding), digit-major
// over the dispatch's chunk of tiles g0 .. g_end, `table` being bound at
// that chunk's part.
fn table_slot(d: u32, g: u32) -> u32 {
    if (params.flags & FLAG_LOCAL) != 0u {
        return d * (params.g_end - params.g0) + g - params.g0;
    }
    return d * params.groups + g;
}

// What a scatter adds to a scanned table entry: with FLAG_LOCAL, where the
// chunk's keys of digit d start among all keys, less its keys of smaller
// digits (the chunk's part of the table is scanned on its own, so its
// entries count those); `sums` is bound at the chunk's row (`chunk_bases`).
fn chunk_base(d: u32) -> u32 {
    if (params.flags & FLAG_LOCAL) != 0u {
        return sums[d];
    }
    return 0u;
}

// Pass step 1: digit counts of each tile, digit-major.
@compute @workgroup_size(WG)
fn histogram(id: Ids) {
    let g = params.g0 + group_of(id);
    let live = g < params.g_end;
    atomicStore(&sh_hist[id.lid], 0u);
    workgroupBarrier();
    if live {
        for (var k = 0u; k < ITEMS; k++) {
            let i = g * TILE + k * WG + id.lid;
            if i < params.n {
                atomicAdd(&sh_hist[digit(load_key(i))], 1u);
            }
        }
    }
    workgroupBarrier();
    if live {
        table[table_slot(id.lid, g)] = atomicLoad(&sh_hist[id.lid]);
    }
}

// Scan step 1: the sum of each block of TILE table entries into `sums`.
@compute @workgroup_size(WG)
fn scan_reduce(id: Ids) {
    let g = group_of(id);
    var s = 0u;
    if g < params.groups {
        for (var k = 0u; k < ITEMS; k++) {
            let i = g * TILE + k * WG + id.lid;
            if i < params.n {
                s += table[i];
            }
        }
    }
    let r = wg_scan(id.lid, s);
    if id.lid == 0u && g < params.groups {
        sums[g] = r.y;
    }
}

// Scan step 2: exclusive scan of each block in place, plus the block's
// scanned sum (when HAS_SUMS; a single block needs none).
@compute @workgroup_size(WG)
fn scan_down(id: Ids) {
    let g = group_of(id);
    let live = g < params.groups;
    let base = g * TILE + id.lid * ITEMS;
    var v: array<u32, ITEMS>;
    var s = 0u;
    for (var j = 0u; j < ITEMS; j++) {
        v[j] = 0u;
        if live && base + j < params.n {
            v[j] = table[base + j];
        }
        s += v[j];
    }
    let r = wg_scan(id.lid, s);
    var run = r.x;
    if live && (params.flags & FLAG_HAS_SUMS) != 0u {
        run += sums[g];
    }
    for (var j = 0u; j < ITEMS; j++) {
        if live && base + j < params.n {
            table[base + j] = run;
        }
        run += v[j];
    }
}

// The whole table's exclusive scan in one workgroup, for tables of at
// most 64 entries an invocation (`ONE_SCAN_MAX`): each invocation sums a
// span of consecutive entries, the sums are scanned across the workgroup,
// and each span is rewritten with its prefixes.
@compute @workgroup_size(WG)
fn scan_one(id: Ids) {
    let span = (params.n + WG - 1u) / WG;
    let first = min(id.lid * span, params.n);
    let last = min(first + span, params.n);
    var s = 0u;
    for (var i = first; i < last; i++) {
        s += table[i];
    }
    var run = wg_scan(id.lid, s).x;
    for (var i = first; i < last; i++) {
        let v = table[i];
        table[i] = run;
        run += v;
    }
}

// With FLAG_LOCAL, after each chunk's part of the table is scanned: the
// chunk's keys of digits below d (its first scanned entry of digit d) into
// sums[d], and its keys of digit d into sums[RADIX + d]; `table` and `sums`
// are bound at the chunk's part and row pair, `n` is the chunk's keys.
@compute @workgroup_size(WG)
fn chunk_heads(id: Ids) {
    let tiles = params.g_end - params.g0;
    let d = id.lid;
    let e = table[d * tiles];
    var next = params.n;
    if d + 1u < RADIX {
        next = table[(d + 1u) * tiles];
    }
    sums[d] = e;
    sums[RADIX + d] = next - e;
}

// Then, for all `groups` chunks at once (`sums` bound whole): row c becomes
// each digit's start among all keys (every smaller digit's keys, then the
// digit's keys in earlier chunks) less the chunk's keys of smaller digits.
@compute @workgroup_size(WG)
fn chunk_bases(id: Ids) {
    let d = id.lid;
    var total = 0u;
    for (var c = 0u; c < params.groups; c++) {
        total += sums[c * 2u * RADIX + RADIX + d];
    }
    var run = wg_scan(d, total).x;
    for (var c = 0u; c < params.groups; c++) {
        let row = c * 2u * RADIX;
        let e = sums[row + d];
        let t = sums[row + RADIX + d];
        sums[row + d] = run - e;
        run += t;
    }
}

// The value that travels with key i: its index (argsort) or `vals_in[i]`.
fn load_val(i: u32) -> u32 {
    if (params.flags & FLAG_GEN_INDEX) != 0u {
        return i;
    }
    return vals_in[i - params.g0 * TILE];
}

// The scatters' last step: tile g's sorted keys (and values) in workgroup
// memory, with each digit's first position in `sh_start`, go to their
// slots, coalesced; padding past `valid` is not written, nor are slots
// outside the dispatch's output window.
fn write_sorted(g: u32, valid: u32, lid: u32) {
    for (var k = 0u; k < SITEMS; k++) {
        let p = k * SWG + lid;
        if p < valid {
            let key = sh_keys[p];
            let d = digit(key);
            let dst = table[table_slot(d, g)] + chunk_base(d) + p - sh_start[d];
            if dst >= params.out_lo && dst < params.out_hi {
                keys_out[dst - params.out_lo] = store_bits(key);
                vals_out[dst - params.out_lo] = sh_vals[p];
            }
        }
    }
}
// variant write_sorted_keys of write_sorted: `vals_out[dst - params.out_lo] = sh_vals[p];` => ``

// Pass step 3, keys with u32 values (or generated indices); the keys-only
// scatter is this with every value line dropped (the `variant` below).
// Padding keys (past n) have digit 0xff and come last in the tile, so after
// the stable local sort they sit past `valid`, unwritten. Slots outside the
// output window are left to the window's own dispatch.
@compute @workgroup_size(SWG)
fn scatter_pairs(id: Ids) {
    let g = params.g0 + group_of(id);
    let live = g < params.g_end;
    var valid = 0u;
    if live {
        valid = min(TILE, params.n - g * TILE);
    }
    for (var k = 0u; k < SITEMS; k++) {
        let p = k * SWG + id.lid;
        var key = 0xffffffffu;
        var val = 0u;
        if p < valid {
            let i = g * TILE + p;
            key = load_key(i);
            val = load_val(i);
        }
        sh_keys[p] = key;
        sh_vals[p] = val;
    }
    lookback_reset(id.lid);
    workgroupBarrier();
    for (var bit = 0u; bit < 8u; bit += 2u) {
        var kk: array<u32, SITEMS>;
        var vv: array<u32, SITEMS>;
        for (var j = 0u; j < SITEMS; j++) {
            kk[j] = sh_keys[id.lid * SITEMS + j];
            vv[j] = sh_vals[id.lid * SITEMS + j];
        }
        let pos = split_positions(id.lid, kk, bit);
        for (var j = 0u; j < SITEMS; j++) {
            sh_keys[pos[j]] = kk[j];
            sh_vals[pos[j]] = vv[j];
        }
        workgroupBarrier();
    }
    digit_starts(id.lid);
    write_sorted(g, valid, id.lid);
}
// variant scatter_keys of scatter_pairs: `var val = 0u;` => ``, `val = load_val(i);` => ``,
//     `sh_vals[p] = val;` => ``, `var vv: array<u32, SITEMS>;` => ``,
//     `vv[j] = sh_vals[id.lid * SITEMS + j];` => ``, `sh_vals[pos[j]] = vv[j];` => ``,
//     `write_sorted(g, valid, id.lid);` => `write_sorted_keys(g, valid, id.lid);`
// variant onesweep_pairs of scatter_pairs: `digit_starts(id.lid);` => ``,
//     `let g = params.g0 + group_of(id);` => `let g = onesweep_tile(id.lid);`,
//     `write_sorted(g, valid, id.lid);` => `onesweep_split_place(g, valid, id.lid); onesweep_write(valid, id.lid);`
// variant onesweep_keys of scatter_keys: `digit_starts(id.lid);` => ``,
//     `let g = params.g0 + group_of(id);` => `let g = onesweep_tile(id.lid);`,
//     `write_sorted_keys(g, valid, id.lid);` => `onesweep_split_place(g, valid, id.lid); onesweep_write_keys(valid, id.lid);`

// ---- onesweep: four passes in five dispatches ----
// For an input within one storage binding (and under 2^30 keys), the host
// runs `onesweep_hist` once and then one scatter per pass (`onesweep_*`,
// variants of the scatters above), instead of a histogram, a table scan and
// a scatter per pass (Onesweep, Adinets & Merrill 2022).
//   - `onesweep_hist` counts all four digits of every key into `ghist`
//     (`ghist[pass * RADIX + d]`, zeroed by the host before the dispatch),
//     and zeroes each tile's look-back entries of every pass.
//   - Each scatter ranks its tile as before, publishes the tile's count of
//     each digit in `status` (`status[tile * RADIX + d]`, the pass's slice
//     of it bound), walks back over earlier tiles' entries until each of
//     its digits meets an INCLUSIVE one, publishes its own INCLUSIVE count,
//     and writes every key at: the keys of smaller digits (the scanned
//     global counts) + the digit's keys in earlier tiles + its rank in the
//     tile.
// An entry is one word: LB_AGG or LB_INC over a 30-bit count (zero: not yet
// published), so a reader never pairs a flag with a stale count. WebGPU
// promises no forward progress between workgroups: an entry still zero
// after SPIN reads sends the whole workgroup down a slower walk in
// lock-step that counts such a tile's digits from its keys itself
// (Levien's "decoupled fallback"): correct on any scheduler. The keys of
// every tile are there to count: the previous dispatch wrote them.
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read_write> ghist: array<atomic<u32>>;

const LB_AGG: u32 = 0x40000000u;
const LB_INC: u32 = 0x80000000u;
const LB_COUNT: u32 = 0x3fffffffu;
// Reads of an unpublished entry before the fallback (0: always fall back,
// a test's setting; the walk is then quadratic in tiles).
override SPIN: u32 = 1024u;
// Most iterations of an invocation's fast walk (its reads and steps back
// over all four digits) before it too takes the slow walk: llvmpipe ends
// a shader's loops, as if they had broken out, once they have run 65535
// iterations between them. (The slow walk takes about 25 a tile, so the
// host keeps software adapters to 2^11 tiles.)
const WALK_STEPS: u32 = 8192u;

// The tile a scatter sorts: the next from this pass's counter (after the
// global counts in `ghist`, zeroed with them), so every tile's
// predecessors have started before it. (llvmpipe hands each thread a
// block of consecutive workgroups: by workgroup index, the first tile of
// the second block would wait on the last of the first.)
var<workgroup> lb_tile: u32;

fn onesweep_tile(lid: u32) -> u32 {
    if lid == 0u {
        lb_tile = atomicAdd(&ghist[4u * RADIX + params.shift / 8u], 1u);
    }
    return workgroupUniformLoad(&lb_tile);
}

var<workgroup> sh_hist4: array<atomic<u32>, 1024>; // RADIX per pass
// Whether some digit's walk met an entry that stayed unpublished.
var<workgroup> lb_stuck: u32;
// The lock-step walk's flags: some digit found the tile unpublished, some
// digit is not done.
var<workgroup> lb_pending: u32;
var<workgroup> lb_more: u32;

// Clears the look-back flags (invocation 0, before the scatter's first
// barrier).
fn lookback_reset(lid: u32) {
    if lid == 0u {
        lb_stuck = 0u;
        lb_pending = 0u;
        lb_more = 0u;
    }
}

// (b, b + v.x, b + v.x + v.y, b + v.x + v.y + v.z): exclusive prefixes of
// four consecutive digits.
fn prefix4(b: u32, v: vec4<u32>) -> vec4<u32> {
    return vec4(b, b + v.x, b + v.x + v.y, b + v.x + v.y + v.z);
}

// This pass's global counts of digits d0 .. d0 + 3.
fn global_counts(d0: u32) -> vec4<u32> {
    let at = (params.shift / 8u) * RADIX + d0;
    return vec4(
        atomicLoad(&ghist[at]),
        atomicLoad(&ghist[at + 1u]),
        atomicLoad(&ghist[at + 2u]),
        atomicLoad(&ghist[at + 3u]),
    );
}

// Every digit of every key, tile by tile: the four passes' global counts.
@compute @workgroup_size(WG)
fn onesweep_hist(id: Ids) {
    let g = group_of(id);
    let live = g < params.groups;
    for (var p = 0u; p < 4u; p++) {
        atomicStore(&sh_hist4[p * RADIX + id.lid], 0u);
    }
    workgroupBarrier();
    if live {
        for (var k = 0u; k < ITEMS; k++) {
            let i = g * TILE + k * WG + id.lid;
            if i < params.n {
                let key = load_key(i);
                for (var p = 0u; p < 4u; p++) {
                    atomicAdd(&sh_hist4[p * RADIX + ((key >> (8u * p)) & 0xffu)], 1u);
                }
            }
        }
        for (var p = 0u; p < 4u; p++) {
            atomicStore(&status[(p * params.groups + g) * RADIX + id.lid], 0u);
        }
    }
    workgroupBarrier();
    if live {
        for (var p = 0u; p < 4u; p++) {
            let c = atomicLoad(&sh_hist4[p * RADIX + id.lid]);
            if c != 0u {
                atomicAdd(&ghist[p * RADIX + id.lid], c);
            }
        }
    }
}

// The slow walk, for the whole workgroup in lock-step from tile g - 1
// down: a tile some digit finds unpublished has its digits counted from
// its keys by the workgroup (into `sh_hist`). Returns the keys of digits
// d0 .. d0 + 3 in tiles 0 .. g.
fn lookback_slow(g: u32, lid: u32) -> vec4<u32> {
    let d0 = lid * (RADIX / SWG);
    var acc = vec4(0u);
    var done = vec4(false);
    var j = g;
    loop {
        j -= 1u;
        var pending = vec4(false);
        for (var k = 0u; k < 4u; k++) {
            if !done[k] {
                // One read: this walk has already waited once.
                var v = 0u;
                if SPIN != 0u {
                    v = atomicLoad(&status[j * RADIX + d0 + k]);
                }
                if v == 0u {
                    pending[k] = true;
                    lb_pending = 1u;
                } else {
                    acc[k] += v & LB_COUNT;
                    done[k] = (v & LB_INC) != 0u;
                }
            }
        }
        if workgroupUniformLoad(&lb_pending) != 0u {
            atomicStore(&sh_hist[lid * 4u], 0u);
            atomicStore(&sh_hist[lid * 4u + 1u], 0u);
            atomicStore(&sh_hist[lid * 4u + 2u], 0u);
            atomicStore(&sh_hist[lid * 4u + 3u], 0u);
            workgroupBarrier();
            // j < g: a whole tile.
            for (var k = 0u; k < SITEMS; k++) {
                let i = j * TILE + k * SWG + lid;
                atomicAdd(&sh_hist[digit(load_key(i))], 1u);
            }
            workgroupBarrier();
            for (var k = 0u; k < 4u; k++) {
                if pending[k] {
                    acc[k] += atomicLoad(&sh_hist[d0 + k]);
                }
            }
        }
        // Tile 0's entries are INCLUSIVE: every walk ends there.
        if j != 0u && !all(done) {
            lb_more = 1u;
        }
        let more = workgroupUniformLoad(&lb_more);
        // Everyone has read both flags before they are cleared, and they
        // are clear before the next round sets them.
        workgroupBarrier();
        if lid == 0u {
            lb_pending = 0u;
            lb_more = 0u;
        }
        workgroupBarrier();
        if more == 0u {
            break;
        }
    }
    return acc;
}

// After ranking tile g (sorted in `sh_keys`): with, for digits d0 .. d0 + 3
// of invocation `lid`, the tile's counts `cnt`, their first positions in
// the sorted tile `st` and the first output slots of the pass `gst`,
// publishes the counts, finds the digits' keys in earlier tiles, publishes
// the inclusive counts, and leaves in `sh_start[d]` the output slot of
// sorted position 0 for digit d (slot of position p: `sh_start[d] + p`).
fn onesweep_place(g: u32, lid: u32, cnt: vec4<u32>, st: vec4<u32>, gst: vec4<u32>) {
    // A dispatch folded into 2-D has workgroups past the last tile; they
    // claim numbers past it and have no keys to place.
    if g >= params.g_end {
        return;
    }
    let d0 = lid * (RADIX / SWG);
    let first = select(LB_AGG, LB_INC, g == 0u);
    for (var k = 0u; k < 4u; k++) {
        atomicStore(&status[g * RADIX + d0 + k], first | cnt[k]);
    }
    // Each invocation walks its four digits in turn, in one flat loop.
    var acc = vec4(0u);
    var stuck = false;
    if g != 0u {
        var k = 0u;
        var j = g - 1u;
        var spins = 0u;
        var steps = 0u;
        loop {
            if spins >= SPIN || steps >= WALK_STEPS {
                stuck = true;
                break;
            }
            steps += 1u;
            let v = atomicLoad(&status[j * RADIX + d0 + k]);
            if v == 0u {
                spins += 1u;
                continue;
            }
            spins = 0u;
            acc[k] += v & LB_COUNT;
            if (v & LB_INC) == 0u && j != 0u {
                j -= 1u;
                continue;
            }
            k += 1u;
            j = g - 1u;
            if k == 4u {
                break;
            }
        }
    }
    if stuck {
        lb_stuck = 1u;
    }
    if workgroupUniformLoad(&lb_stuck) != 0u {
        acc = lookback_slow(g, lid);
    }
    if g != 0u {
        for (var k = 0u; k < 4u; k++) {
            atomicStore(&status[g * RADIX + d0 + k], LB_INC | (acc[k] + cnt[k]));
        }
    }
    let base = gst + acc - st;
    sh_start[d0] = base.x;
    sh_start[d0 + 1u] = base.y;
    sh_start[d0 + 2u] = base.z;
    sh_start[d0 + 3u] = base.w;
    workgroupBarrier();
}

// The first position of digit `d` in the sorted tile's `valid` keys (or
// `valid` if every key's digit is smaller).
fn digit_lower_bound(d: u32, valid: u32) -> u32 {
    var lo = 0u;
    var hi = valid;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if digit(sh_keys[mid]) < d {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// `onesweep_place` for the split-round scatters: the tile's digit counts
// and first positions by binary search of the sorted tile, the global
// counts scanned across the workgroup.
fn onesweep_split_place(g: u32, valid: u32, lid: u32) {
    let d0 = lid * (RADIX / SWG);
    var b: array<u32, 5>;
    for (var k = 0u; k < 5u; k++) {
        b[k] = digit_lower_bound(d0 + k, valid);
    }
    let st = vec4(b[0], b[1], b[2], b[3]);
    let cnt = vec4(b[1], b[2], b[3], b[4]) - st;
    let gl = global_counts(d0);
    let gs = wg_scan2(lid, vec2(gl.x + gl.y + gl.z + gl.w, 0u))[0].x;
    onesweep_place(g, lid, cnt, st, prefix4(gs, gl));
}

// The onesweep scatters' writes: sorted position p to `sh_start[d] + p`.
fn onesweep_write(valid: u32, lid: u32) {
    for (var k = 0u; k < SITEMS; k++) {
        let p = k * SWG + lid;
        if p < valid {
            let key = sh_keys[p];
            let dst = sh_start[digit(key)] + p;
            keys_out[dst] = store_bits(key);
            vals_out[dst] = sh_vals[p];
        }
    }
}
// variant onesweep_write_keys of onesweep_write: `vals_out[dst] = sh_vals[p];` => ``

// begin subgroups
// Where the device has SUBGROUP with subgroups of at least 8 invocations
// (`scatter_*_sg`): the tile is ranked in one sweep instead of four split
// rounds (Onesweep's ranking, Adinets & Merrill 2022). Subgroup `sg` holds
// the tile positions `sg * size * SITEMS ..` in rows of `size` keys, and
// walks its rows in order: the lanes with the same digit find each other by
// eight ballots (one per digit bit), a key's rank among them is the number
// of peers in lower lanes, and the highest peer adds the group's size to the
// subgroup's count of that digit, whose old value every peer shuffles in.
// The per-subgroup counts are then scanned across subgroups and the tile's
// digits, giving each key its place in the stably sorted tile in one
// scatter through workgroup memory: four barriers in all, against ten for
// the split rounds (two a round, one after the load, one for the digit
// starts). On lavapipe (subgroups of 8) the sort of 2^16 keys went
// from 8.2–9.2 ms to 6.7–7.4 ms (best of 22 calls, alternated runs).
//
// Counts are 16-bit fields, two digits to a word (a tile has at most 1024
// keys), at most SWG / 8 subgroups. The ranks need the count updates of a
// row to be seen by the next row: they are atomic read-modify-writes of
// one word, and each row's reads of them go through a shuffle of the
// previous row's results, so they are ordered.
const SG_MAX: u32 = 8u;
var<workgroup> sg_counts: array<atomic<u32>, 1024>; // SG_MAX * RADIX / 2
var<workgroup> sg_sums: array<vec2<u32>, SG_MAX>;

// The ballot mask of the lanes below `lane` (up to 128 lanes).
fn lanes_below(lane: u32) -> vec4<u32> {
    let word = vec4(0u, 1u, 2u, 3u);
    let w = vec4(lane / 32u);
    let bits = vec4((1u << (lane % 32u)) - 1u);
    return select(vec4(0u), vec4(0xffffffffu), w > word) | select(vec4(0u), bits, w == word);
}

fn ones(m: vec4<u32>) -> u32 {
    let c = countOneBits(m);
    return c.x + c.y + c.z + c.w;
}

// The highest lane set in a non-empty ballot mask.
fn highest_lane(m: vec4<u32>) -> u32 {
    if m.w != 0u {
        return 96u + firstLeadingBit(m.w);
    }
    if m.z != 0u {
        return 64u + firstLeadingBit(m.z);
    }
    if m.y != 0u {
        return 32u + firstLeadingBit(m.y);
    }
    return firstLeadingBit(m.x);
}

// Digit `d`'s count (or, after the scan, prefix) in subgroup `s`.
fn sg_count(s: u32, d: u32) -> u32 {
    return (atomicLoad(&sg_counts[s * (RADIX / 2u) + d / 2u]) >> ((d & 1u) * 16u)) & 0xffffu;
}

@compute @workgroup_size(SWG)
fn scatter_pairs_sg(
    id: Ids,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
    @builtin(num_subgroups) count: u32,
) {
    let g = params.g0 + group_of(id);
    let live = g < params.g_end;
    var valid = 0u;
    if live {
        valid = min(TILE, params.n - g * TILE);
    }
    for (var i = id.lid; i < SG_MAX * RADIX / 2u; i += SWG) {
        atomicStore(&sg_counts[i], 0u);
    }
    lookback_reset(id.lid);
    workgroupBarrier();
    // 1. Ranks within the subgroup's segment, row by row.
    let below = lanes_below(lane);
    let in_group = lanes_below(size);
    var kk: array<u32, SITEMS>;
    var vv: array<u32, SITEMS>;
    var rank: array<u32, SITEMS>;
    for (var k = 0u; k < SITEMS; k++) {
        let p = (sg * SITEMS + k) * size + lane;
        var key = 0xffffffffu;
        var val = 0u;
        if p < valid {
            let i = g * TILE + p;
            key = load_key(i);
            val = load_val(i);
        }
        kk[k] = key;
        vv[k] = val;
        let d = digit(key);
        var peers = in_group;
        for (var b = 0u; b < 8u; b++) {
            let on = ((d >> b) & 1u) != 0u;
            let vote = subgroupBallot(on);
            peers &= select(~vote, vote, on);
        }
        let r = ones(peers & below);
        let total = ones(peers);
        let sh = (d & 1u) * 16u;
        var old = 0u;
        if r + 1u == total {
            old = atomicAdd(&sg_counts[sg * (RADIX / 2u) + d / 2u], total << sh);
        }
        old = subgroupShuffle(old, highest_lane(peers));
        rank[k] = ((old >> sh) & 0xffffu) + r;
    }
    workgroupBarrier();
    // 2. Each invocation takes RADIX / SWG digits (two whole words a
    // subgroup): their counts become exclusive prefixes across subgroups,
    // and their tile totals are scanned across the digits.
    let d0 = id.lid * (RADIX / SWG);
    var run = vec4(0u);
    for (var s = 0u; s < count; s++) {
        let w = s * (RADIX / 2u) + d0 / 2u;
        let lo = atomicLoad(&sg_counts[w]);
        let hi = atomicLoad(&sg_counts[w + 1u]);
        let c = vec4(lo & 0xffffu, lo >> 16u, hi & 0xffffu, hi >> 16u);
        atomicStore(&sg_counts[w], run.x | (run.y << 16u));
        atomicStore(&sg_counts[w + 1u], run.z | (run.w << 16u));
        run += c;
    }
    // (The onesweep variants scan the pass's global digit counts beside
    // the tile's, for the digits' first output slots.)
    let gl = vec4(0u);
    let mine = vec2(run.x + run.y + run.z + run.w, gl.x + gl.y + gl.z + gl.w);
    let within = subgroupExclusiveAdd(mine);
    if lane == size - 1u {
        sg_sums[sg] = within + mine;
    }
    workgroupBarrier();
    var start = within;
    for (var s = 0u; s < sg; s++) {
        start += sg_sums[s];
    }
    let st = prefix4(start.x, run);
    let gst = prefix4(start.y, gl);
    sh_start[d0] = st.x;
    sh_start[d0 + 1u] = st.y;
    sh_start[d0 + 2u] = st.z;
    sh_start[d0 + 3u] = st.w;
    workgroupBarrier();
    // 3. The stably sorted tile in workgroup memory.
    for (var k = 0u; k < SITEMS; k++) {
        let d = digit(kk[k]);
        let at = sh_start[d] + sg_count(sg, d) + rank[k];
        sh_keys[at] = kk[k];
        sh_vals[at] = vv[k];
    }
    workgroupBarrier();
    // 4. Coalesced writes.
    write_sorted(g, valid, id.lid);
}
// variant scatter_keys_sg of scatter_pairs_sg: `var val = 0u;` => ``, `val = load_val(i);` => ``,
//     `vv[k] = val;` => ``, `var vv: array<u32, SITEMS>;` => ``,
//     `sh_vals[at] = vv[k];` => ``,
//     `write_sorted(g, valid, id.lid);` => `write_sorted_keys(g, valid, id.lid);`
// The onesweep scatters (`onesweep` section above): the same ranking, then
// the digits' first output slots from the global counts and a look-back.
// variant onesweep_pairs_sg of scatter_pairs_sg: `let gl = vec4(0u);` => `let gl = global_counts(d0);`,
//     `let g = params.g0 + group_of(id);` => `let g = onesweep_tile(id.lid);`,
//     `write_sorted(g, valid, id.lid);` => `onesweep_place(g, id.lid, run, st, gst); onesweep_write(valid, id.lid);`
// variant onesweep_keys_sg of scatter_keys_sg: `let gl = vec4(0u);` => `let gl = global_counts(d0);`,
//     `let g = params.g0 + group_of(id);` => `let g = onesweep_tile(id.lid);`,
//     `write_sorted_keys(g, valid, id.lid);` => `onesweep_place(g, id.lid, run, st, gst); onesweep_write_keys(valid, id.lid);`
// end subgroups
