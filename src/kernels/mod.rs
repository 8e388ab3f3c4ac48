//! The kernel catalogue. One family a file, each with its GPU twin in
//! `shaders/<family>.wgsl`.

pub mod conv;
pub mod map;
pub mod reduce;
pub mod transpose;

pub use conv::{Border, Conv2d};
pub use map::{Axpy, Binary, Unary};
pub use reduce::{ArgMax, ArgMin, Dot, Max, Min, Sum};
pub use transpose::Transpose;

/// Every shader of the crate, `(file stem, source)`: tests validate each with
/// naga for every element type.
pub const SHADERS: &[(&str, &str)] = &[
    ("map", include_str!("../../shaders/map.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("conv", include_str!("../../shaders/conv.wgsl")),
    ("transpose", include_str!("../../shaders/transpose.wgsl")),
];
