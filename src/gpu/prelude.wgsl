// ---- the tandem prelude ----
// Appended to every kernel's shader by `gpu::shader!` (WGSL declarations
// may come in any order, so the file's own line numbers stay as they are in
// error messages), then the constants and `Params` declared with it in Rust.
//
// `alias T` is rewritten to the element type (`gpu::specialize`); `KIND` is
// the element kind: 0 float, 1 signed, 2 unsigned.

alias T = f32;

override KIND: u32 = 0u;

// Invocations per workgroup of the one-dimensional kernels
// (`gpu::WORKGROUP_SIZE`).
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;

// The builtins a one-dimensional kernel reads, as its one entry-point
// parameter: `fn name(id: Ids)`.
struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// A workgroup's linear index in a dispatch that `Gpu::submit` folded into
// 2-D past `max_compute_workgroups_per_dimension`.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}


// `group_index` of the invocation's workgroup.
fn group_of(id: Ids) -> u32 {
    return group_index(id.wid, id.nwg);
}

// The invocation's element: its workgroup's first plus its lane.
fn global_index(id: Ids) -> u32 {
    return group_of(id) * WG + id.lid;
}
