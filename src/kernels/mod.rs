//! The kernel catalogue. One family a file, each with its GPU twin in
//! `shaders/<family>.wgsl`.

pub mod compact;
pub mod histogram;
pub mod gemm;
pub mod map;
pub mod reduce;
pub mod scan;

pub use compact::{Compact, CompactIf, Compare};
pub use histogram::{Histogram, HistogramCounts, HistogramRange};
pub use gemm::Gemm;
pub use map::{Axpy, Binary, Unary};
pub use reduce::{ArgMax, ArgMin, Dot, Max, Min, Sum};
pub use scan::Scan;

/// Every shader of the crate, `(file stem, source)`: tests validate each with
/// naga for every element type.
pub const SHADERS: &[(&str, &str)] = &[
    ("gemm", include_str!("../../shaders/gemm.wgsl")),
    ("map", include_str!("../../shaders/map.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("scan", include_str!("../../shaders/scan.wgsl")),
    ("compact", include_str!("../../shaders/compact.wgsl")),
    ("histogram", include_str!("../../shaders/histogram.wgsl")),
];
