//! The kernel catalogue. One family a file, each with its GPU twin in
//! `shaders/<family>.wgsl`.

pub mod gemm;
pub mod map;
pub mod reduce;

pub use gemm::Gemm;
pub use map::{Axpy, Binary, Unary};
pub use reduce::{ArgMax, ArgMin, Dot, Max, Min, Sum};

/// Every shader of the crate, `(file stem, source)`: tests validate each with
/// naga for every element type.
pub const SHADERS: &[(&str, &str)] = &[
    ("gemm", include_str!("../../shaders/gemm.wgsl")),
    ("map", include_str!("../../shaders/map.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
];
