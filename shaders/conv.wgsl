// 2-D correlation of an image with an odd-sized filter: the GPU twin
// of src/kernels/conv.rs.
//
// out[y][x] = sum over i < fh, j < fw of filter[i][j] * img[y + i - fh/2][x + j - fw/2],
// with pixels outside the image read as 0 (border 0) or the nearest edge
// pixel (border 1). Each workgroup computes one TILE x TILE output tile;
// the linear tile index folds past 65,535 workgroups into 2-D.
// `tiled` stages the tile plus halo and the filter in workgroup memory
// (filter radius up to MAX_R); `direct` reads both from global memory.
// Accumulation is one fma per tap in row-major filter order, as on the CPU.
// Image, filter and accumulator are `T`: f32, or f64 on devices with
// SHADER_F64.
//
// One dispatch computes one band of output rows, y0 .. y0 + rows (the whole
// image unless it is larger than one storage binding): `image` is bound
// from image row in_row0 (the band's first row less the halo, clamped),
// starting in_off elements into the binding, and `out` from row y0,
// out_off elements in. Rows are numbered in the whole image, so borders
// and clamping are the whole image's.

// Staged tile edge: TILE plus a halo of MAX_R on each side.
const SPAN: u32 = 32u;
// Largest staged filter: (2 MAX_R + 1)^2 taps.
const MAX_TAPS: u32 = 289u;

@group(0) @binding(1) var<storage, read> image: array<T>;
@group(0) @binding(2) var<storage, read> weights: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

var<workgroup> tile: array<T, 1024>; // SPAN * SPAN
var<workgroup> taps: array<T, MAX_TAPS>;

// The pixel at (y, x), which may lie outside the image.
fn pixel(y: i32, x: i32) -> T {
    let h = i32(params.height);
    let w = i32(params.width);
    if params.border == 1u {
        let cy = clamp(y, 0, h - 1);
        let cx = clamp(x, 0, w - 1);
        return image[params.in_off + (u32(cy) - params.in_row0) * params.width + u32(cx)];
    }
    if y < 0 || y >= h || x < 0 || x >= w {
        return T(0);
    }
    return image[params.in_off + (u32(y) - params.in_row0) * params.width + u32(x)];
}

// The (tile_y, tile_x) of this workgroup within its band, or tile_y past
// the end for the padding workgroups of a folded dispatch.
fn tile_of(wid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    let t = wid.x + wid.y * nwg.x;
    return vec2<u32>(t / params.tiles_x, t % params.tiles_x);
}

@compute @workgroup_size(16, 16)
fn tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = tile_of(wid, nwg);
    if t.x * TILE >= params.rows {
        return; // uniform across the workgroup
    }
    let fh = params.fh;
    let fw = params.fw;
    let span_y = TILE + fh - 1u;
    let span_x = TILE + fw - 1u;
    let y0 = i32(params.y0 + t.x * TILE) - i32(fh / 2u);
    let x0 = i32(t.y * TILE) - i32(fw / 2u);
    for (var k = li; k < span_y * span_x; k += TILE * TILE) {
        let r = k / span_x;
        let c = k % span_x;
        tile[r * SPAN + c] = pixel(y0 + i32(r), x0 + i32(c));
    }
    for (var k = li; k < fh * fw; k += TILE * TILE) {
        taps[k] = weights[k];
    }
    workgroupBarrier();
    let oy = t.x * TILE + lid.y;
    let ox = t.y * TILE + lid.x;
    if oy < params.rows && ox < params.width {
        var acc = T(0);
        for (var i = 0u; i < fh; i++) {
            let row = (lid.y + i) * SPAN + lid.x;
            for (var j = 0u; j < fw; j++) {
                acc = fma(taps[i * fw + j], tile[row + j], acc);
            }
        }
        out[params.out_off + oy * params.width + ox] = acc;
    }
}

@compute @workgroup_size(16, 16)
fn direct(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let t = tile_of(wid, nwg);
    let oy = t.x * TILE + lid.y;
    let ox = t.y * TILE + lid.x;
    if oy >= params.rows || ox >= params.width {
        return;
    }
    let fh = params.fh;
    let fw = params.fw;
    let y0 = i32(params.y0 + oy) - i32(fh / 2u);
    let x0 = i32(ox) - i32(fw / 2u);
    var acc = T(0);
    for (var i = 0u; i < fh; i++) {
        for (var j = 0u; j < fw; j++) {
            acc = fma(weights[i * fw + j], pixel(y0 + i32(i), x0 + i32(j)), acc);
        }
    }
    out[params.out_off + oy * params.width + ox] = acc;
}
