//! The kernel catalogue. One family a file, each with its GPU twin in
//! `shaders/<family>.wgsl`.

pub mod catalogue;
pub mod compact;
pub mod conv;
pub mod expr;
pub mod gemm;
pub mod histogram;
pub mod map;
pub mod reduce;
pub mod scan;
pub mod sort;
pub mod transpose;

pub use compact::{Compact, CompactIf, Compare};
pub use conv::{Border, Conv2d};
pub use expr::{Args, Array, Map, MapReduce, Outputs, Reduced, Scalar};
pub use gemm::Gemm;
pub use histogram::{Histogram, HistogramCounts, HistogramRange};
pub use map::{Axpy, Binary, Unary};
pub use reduce::{ArgMax, ArgMin, Dot, Max, Min, Sum};
pub use scan::Scan;
pub use sort::{Argsort, Sort, SortPairs};
pub use transpose::Transpose;

/// Every shader of the crate, `(file stem, source)`: tests validate each with
/// naga for every element type.
pub const SHADERS: &[(&str, &str)] = &[
    ("compact", include_str!("../../shaders/compact.wgsl")),
    ("conv", include_str!("../../shaders/conv.wgsl")),
    ("expr", include_str!("../../shaders/expr.wgsl")),
    ("gemm", include_str!("../../shaders/gemm.wgsl")),
    ("histogram", include_str!("../../shaders/histogram.wgsl")),
    ("map", include_str!("../../shaders/map.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("scan", include_str!("../../shaders/scan.wgsl")),
    ("sort", include_str!("../../shaders/sort.wgsl")),
    ("transpose", include_str!("../../shaders/transpose.wgsl")),
];
