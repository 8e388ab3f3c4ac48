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

/// Every shader of the crate, `(file stem, source)`: the file from
/// `shaders/` followed by the shared prelude and its `Params` (see
/// `gpu::shader!`). Tests validate each with naga for every element type.
pub const SHADERS: &[(&str, &str)] = &[
    ("compact", compact::SHADER),
    ("conv", conv::SHADER),
    ("expr", crate::expr::wgsl::SHADER),
    ("gemm", gemm::SHADER),
    ("histogram", histogram::SHADER),
    ("map", map::SHADER),
    ("reduce", reduce::SHADER),
    ("scan", scan::SHADER),
    ("sort", sort::SHADER),
    ("sort64", sort::wide::SHADER),
    ("transpose", transpose::SHADER),
];
