// 64-bit (f64) keys for the GPU radix sort: the word kernels around two
// 32-bit sorts (`gpu_sort_f64` in src/kernels/sort/mod.rs).
//
// `split` maps each f64's bits to its order-preserving 64-bit key (the CPU's
// `F64Key`: negatives flipped, positives given the sign bit, then the range
// rotated down by 0x000fffff_ffffffff so every NaN sorts after +Inf) and
// writes the key's low and high words to two u32 arrays. The host then
// sorts the low words stably carrying indices, gathers the high words
// through that permutation (`gather`), sorts those stably carrying the
// permutation, and gathers the f64 bits and any values (`gather`) through
// the final one: LSD order by (high, low) is the 64-bit key's order.
// Elements are read as pairs of u32 words (little-endian: low word first),
// so nothing here needs f64 arithmetic.
//
// Past one storage binding each kernel runs once per output chunk of n
// elements (`perm`, `dst` and `dst_hi` are bound from the chunk's first
// element), and a gather once per chunk and source window: `src` is bound
// from element src_lo, and the dispatch writes only the elements whose
// source lies in src_lo .. src_hi, leaving the rest to the window's own
// dispatch. Within one binding there is one chunk and one window.

@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst_hi: array<u32>;

@compute @workgroup_size(WG)
fn split(id: Ids) {
    let i = global_index(id);
    if i >= params.n {
        return;
    }
    let bl = src[2u * i];
    let bh = src[2u * i + 1u];
    var sl = bl;
    var sh = bh | 0x80000000u;
    if (bh & 0x80000000u) != 0u {
        sl = ~bl;
        sh = ~bh;
    }
    // (sh, sl) - 0x000fffff_ffffffff, with the borrow out of the low word.
    let borrow = select(1u, 0u, sl == 0xffffffffu);
    dst[i] = sl + 1u;
    dst_hi[i] = sh - 0x000fffffu - borrow;
}

// dst[i] = src[perm[i]], for elements of `words` u32 words each (1, or 2
// for f64).
@compute @workgroup_size(WG)
fn gather(id: Ids) {
    let i = global_index(id);
    if i >= params.n {
        return;
    }
    let p = perm[i];
    if p >= params.src_lo && p < params.src_hi {
        let q = p - params.src_lo;
        for (var w = 0u; w < params.words; w++) {
            dst[params.words * i + w] = src[params.words * q + w];
        }
    }
}
