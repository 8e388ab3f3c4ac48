// SGEMM and DGEMM, out = alpha * op(A) * op(B) + beta * C: the GPU twin of
// src/kernels/gemm.rs.
//
// One workgroup of 256 invocations computes a TS x TS = 64 x 64 tile of the
// m x n result, walking k in steps of BK = 16 through workgroup-shared tiles
// of op(A) (64 x 16) and op(B) (16 x 64). Invocation (tx, ty) of the 16 x 16
// grid keeps the 4 x 4 register tile at rows 4*ty.., columns 4*tx.. in four
// named vec4 accumulators (an array would spill), and the inner loop is
// unrolled by hand. Loads outside the matrices read zero, stores outside are
// skipped, so any m, n, k works. Tiles are numbered linearly (row-major over
// the grid of tiles) so that a dispatch folded into 2-D past 65,535
// workgroups still covers each tile once.
//
// Matrices and accumulators are `T` (f32, or f64 on devices with
// SHADER_F64; alpha and beta come as T's bits); `flags` bit 0: A holds
// op(A) transposed (k x m), bit 1: B holds op(B) transposed (n x k), bit 2:
// read C (beta != 0; with beta = 0 C is never read, so NaN in it is ignored),
// bit 3: add to `out` instead (a later block along k).
//
// One dispatch computes one block of a product that may be larger than one
// storage binding (`Gemm::gpu` splits it): m, n and k are the block's, the
// matrices are row-major with leading dimensions lda, ldb and ldc, and each
// binding is a window of its matrix whose block starts at element a_off,
// b_off or c_off (C and out share a layout, so they share c_off).

// vec4 columns of a shared tile row: TS / 4.
const TV: u32 = 16u;

@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read> c: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

// sa[p * TV + i4] = op(A)[row0 + 4*i4 .. +3, k0 + p]
var<workgroup> sa: array<vec4<T>, 256>;
// sb[p * TV + j4] = op(B)[k0 + p, col0 + 4*j4 .. +3]
var<workgroup> sb: array<vec4<T>, 256>;

// op(A)[i, p], zero outside the matrix.
fn load_a(i: u32, p: u32) -> T {
    if i >= params.m || p >= params.k { return T(0); }
    if (params.flags & 1u) != 0u { return T(a[params.a_off + p * params.lda + i]); }
    return T(a[params.a_off + i * params.lda + p]);
}

// op(B)[p, j], zero outside the matrix.
fn load_b(p: u32, j: u32) -> T {
    if p >= params.k || j >= params.n { return T(0); }
    if (params.flags & 2u) != 0u { return T(b[params.b_off + j * params.ldb + p]); }
    return T(b[params.b_off + p * params.ldb + j]);
}

// begin not-f64
fn alpha() -> T {
    return bitcast<T>(params.alpha_lo);
}

fn beta() -> T {
    return bitcast<T>(params.beta_lo);
}
// end not-f64
// begin f64
fn alpha() -> T {
    return bitcast<T>((u64(params.alpha_hi) << 32u) | u64(params.alpha_lo));
}

fn beta() -> T {
    return bitcast<T>((u64(params.beta_hi) << 32u) | u64(params.beta_lo));
}
// end f64

// Writes alpha * acc (+ beta * C, or + out for a later block along k) to
// row i, columns j..j+3, where they exist.
fn store_row(i: u32, j: u32, acc: vec4<T>) {
    if i >= params.m { return; }
    let use_c = (params.flags & 4u) != 0u;
    let add = (params.flags & 8u) != 0u;
    let base = params.c_off + i * params.ldc + j;
    for (var q = 0u; q < 4u; q++) {
        if j + q < params.n {
            var v = alpha() * acc[q];
            if use_c { v = fma(beta(), c[base + q], v); }
            if add { v += out[base + q]; }
            out[base + q] = T(v);
        }
    }
}

// The invocation's 4×4 register tile of C, one vec4 per row (private
// variables start at zero).
var<private> acc0: vec4<T>;
var<private> acc1: vec4<T>;
var<private> acc2: vec4<T>;
var<private> acc3: vec4<T>;

// One rank-1 update of the register tile: `av` (four rows of a column of A)
// times `bv` (four columns of a row of B).
fn rank1(av: vec4<T>, bv: vec4<T>) {
    acc0 = fma(vec4<T>(av.x), bv, acc0);
    acc1 = fma(vec4<T>(av.y), bv, acc1);
    acc2 = fma(vec4<T>(av.z), bv, acc2);
    acc3 = fma(vec4<T>(av.w), bv, acc3);
}

@compute @workgroup_size(256)
fn gemm(id: Ids) {
    let tile = group_of(id);
    let tiles_m = (params.m + TS - 1u) / TS;
    if tile >= tiles_m * params.tiles_n { return; }
    let row0 = (tile / params.tiles_n) * TS;
    let col0 = (tile % params.tiles_n) * TS;
    let tx = id.lid % TV;
    let ty = id.lid / TV;

    // Which element of the shared tiles this invocation loads: along the
    // dimension that is contiguous in memory, so neighbours read neighbours.
    let lo = id.lid % 16u;
    let hi = id.lid / 16u;
    let trans_a = (params.flags & 1u) != 0u;
    let trans_b = (params.flags & 2u) != 0u;
    // A: (p, i4); contiguous along p unless transposed.
    let ap = select(lo, hi, trans_a);
    let ai = select(hi, lo, trans_a) * 4u + row0;
    // B: (p, j4); contiguous along j unless transposed.
    let bp = select(hi, lo, trans_b);
    let bj = select(lo, hi, trans_b) * 4u + col0;
    let a_slot = ap * TV + (ai - row0) / 4u;
    let b_slot = bp * TV + (bj - col0) / 4u;

    let busy = row0 + ty * 4u < params.m && col0 + tx * 4u < params.n;

    for (var k0 = 0u; k0 < params.k; k0 += BK) {
        sa[a_slot] = vec4<T>(
            load_a(ai, k0 + ap),
            load_a(ai + 1u, k0 + ap),
            load_a(ai + 2u, k0 + ap),
            load_a(ai + 3u, k0 + ap),
        );
        sb[b_slot] = vec4<T>(
            load_b(k0 + bp, bj),
            load_b(k0 + bp, bj + 1u),
            load_b(k0 + bp, bj + 2u),
            load_b(k0 + bp, bj + 3u),
        );
        workgroupBarrier();
        // Invocations whose whole register tile lies outside C (ragged edge
        // tiles) skip the arithmetic but still take part in the barriers.
        for (var p = 0u; p < BK && busy; p += 4u) {
            // Unrolled by four: one rank-1 update per step of k.
            rank1(sa[p * TV + ty], sb[p * TV + tx]);
            rank1(sa[(p + 1u) * TV + ty], sb[(p + 1u) * TV + tx]);
            rank1(sa[(p + 2u) * TV + ty], sb[(p + 2u) * TV + tx]);
            rank1(sa[(p + 3u) * TV + ty], sb[(p + 3u) * TV + tx]);
        }
        workgroupBarrier();
    }

    let i = row0 + ty * 4u;
    let j = col0 + tx * 4u;
    store_row(i, j, acc0);
    store_row(i + 1u, j, acc1);
    store_row(i + 2u, j, acc2);
    store_row(i + 3u, j, acc3);
}
