//! The kernel catalogue. One family a file, each with its GPU twin in
//! `shaders/<family>.wgsl`.

pub mod map;
pub mod reduce;
pub mod sort;

pub use map::{Axpy, Binary, Unary};
pub use reduce::{ArgMax, ArgMin, Dot, Max, Min, Sum};
pub use sort::{Argsort, Sort, SortPairs};

/// Every shader of the crate, `(file stem, source)`: tests validate each with
/// naga for every element type.
pub const SHADERS: &[(&str, &str)] = &[
    ("map", include_str!("../../shaders/map.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("sort", include_str!("../../shaders/sort.wgsl")),
];
