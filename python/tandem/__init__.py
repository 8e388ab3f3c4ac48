"""tandem: data-parallel kernels on all CPU cores (SIMD) or the GPU, from numpy.

Every function takes C-contiguous float32, float64, int32 or uint32 numpy
arrays, read in place (no copy; float64, numpy's default, included, in the
expression kernels ``map``/``reduce`` as well), and
``device="auto"|"cpu"|"gpu"``; ``"auto"`` lets tandem's cost model pick per
call. The GIL is released while a kernel
runs, so threads calling tandem run in parallel. Other dtypes or layouts
raise ``TypeError``/``ValueError`` saying how to convert; nothing is cast
silently.

The module-level functions use a default engine built on first use (never
at import) and rebuilt in a forked child process, so ``multiprocessing``
with ``fork`` works. ``tandem.Engine(threads=..., gpu=...)`` makes another.

Names follow numpy: ``sum``, ``dot``, ``min``, ``max``, ``argmin``,
``argmax``, ``cumsum``, ``sort``, ``argsort``, ``histogram``, ``extract``,
``compress``, ``matmul``, ``transpose``, ``correlate2d`` (scipy's), plus
expression kernels: ``map("a*x + y", a=3.0, x=x, y=y)`` and
``reduce("sum", "x*y", x=x, y=y)``. ``tandem.dask`` runs them per chunk of a
dask array.
"""

from ._tandem import (
    Engine,
    argmax,
    argmin,
    argsort,
    compress,
    correlate2d,
    cumsum,
    dot,
    explain,
    extract,
    histogram,
    info,
    map,
    matmul,
    max,
    min,
    reduce,
    sort,
    stats,
    sum,
    transpose,
)

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "argmax",
    "argmin",
    "argsort",
    "compress",
    "correlate2d",
    "cumsum",
    "dot",
    "explain",
    "extract",
    "histogram",
    "info",
    "map",
    "matmul",
    "max",
    "min",
    "reduce",
    "sort",
    "stats",
    "sum",
    "transpose",
]
