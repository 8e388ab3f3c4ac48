// Matrix transpose: the GPU twin of src/kernels/transpose.rs.
//
// out[c * rows + r] = x[r * cols + c]. Each workgroup (32 x 8 invocations)
// moves one 32 x 32 tile: coalesced reads of input rows into workgroup
// memory, coalesced writes of output rows from it. The tile row stride is
// 33 so the column reads hit 32 different banks. Ragged edges are
// bounds-checked; the linear tile index folds past 65,535 workgroups into
// 2-D. A matrix over one binding moves in blocks, one dispatch each, that
// bind whole input rows and whole output rows (`transpose_gpu`). Values are only moved, so the element type (`alias T`) does not
// matter beyond its size.

const ROWS_PER_PASS: u32 = 8u;
// TILE rows of TILE + 1 elements.
const TILE_STRIDE: u32 = 33u;

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

var<workgroup> tile: array<T, 1056>; // TILE * TILE_STRIDE

@compute @workgroup_size(32, 8)
fn transpose(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Tiles of this dispatch's block; rows and columns below are the
    // block's own (input row r0 + r, column c0 + c).
    let t = group_index(wid, nwg);
    let tile_r = t / params.tiles_x;
    let tile_c = t % params.tiles_x;
    if tile_r * TILE >= params.br {
        return; // padding workgroup of a folded dispatch: uniform
    }
    let r0 = tile_r * TILE;
    let c0 = tile_c * TILE;
    for (var k = lid.y; k < TILE; k += ROWS_PER_PASS) {
        let r = r0 + k;
        let c = c0 + lid.x;
        if r < params.br && c < params.bc {
            tile[k * TILE_STRIDE + lid.x] = x[params.in_off + r * params.cols + params.c0 + c];
        }
    }
    workgroupBarrier();
    // Output row = input column c0 + k, output column = input row r0 + lid.x.
    for (var k = lid.y; k < TILE; k += ROWS_PER_PASS) {
        let c = c0 + k;
        let r = r0 + lid.x;
        if r < params.br && c < params.bc {
            out[params.out_off + c * params.rows + params.r0 + r] = tile[lid.x * TILE_STRIDE + k];
        }
    }
}
