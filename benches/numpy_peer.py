#!/usr/bin/env python3
"""numpy's time for each of compare's cases: the comparison a Python user
reads first.

`cargo run --release --example compare` runs this once per sweep, with the
sweep's plan on stdin (JSON: {"cases": [{"kernel": "sum", "n": 1048576,
"elements": 1048576, "reps": 20}, ...]}, `elements` optional) and reads
one JSON object back on stdout: {"numpy": "2.4.6", "blas": "...", "rows":
[{"kernel": ..., "n": ..., "median_s": ...}], "errors": [{"kernel": ...,
"n": ..., "error": ...}]}. A kernel numpy has no equivalent for (conv2d)
has no row. A case that raised (numpy out of memory), or whose input would
not hold the case's `elements` (`n` is a side for compare's square cases
and an element count for the rest), has an entry in "errors" instead. Run
by hand: `echo '{"cases":[{"kernel":"sum","n":16777216,"reps":10}]}' |
python3 benches/numpy_peer.py`.

Each case's data has the shape, dtype and value range compare's own case
uses (f32 in [0.5, 2), u32 keys, a 0/1 mask, 256 histogram bins), and each
operation is what a numpy user writes, allocating its result as tandem's
kernels do. numpy's threads are left at their defaults; compare unsets
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this process, which otherwise
select an older OpenBLAS kernel.
"""

import json
import sys
import time

import numpy as np

S = 1.5  # compare's Unary::Scale factor
A = 2.5  # compare's Axpy a
T = 1.25  # compare's CompactIf threshold
BINS = 256  # compare's histogram bins
LO, HI = 0.5, 2.0  # compare's histogram_range


def f32(rng, n):
    return rng.uniform(0.5, 2.0, n).astype(np.float32)


def f64(rng, n):
    return rng.uniform(0.5, 2.0, n)


def u32(rng, n, below=None):
    if below is None:
        return rng.integers(0, 2**32, n, dtype=np.uint32)
    return rng.integers(0, below, n, dtype=np.uint32)


def exclusive_cumsum(x):
    out = np.empty_like(x)
    out[0:1] = 0
    np.cumsum(x[:-1], out=out[1:])
    return out


def case(kernel, n, rng):
    """(callable, args) for a kernel at size n, or None."""
    unary = {
        "neg": np.negative,
        "abs": np.abs,
        "sqrt": np.sqrt,
        "exp": np.exp,
        "ln": np.log,
        "scale": lambda x: x * np.float32(S),
        "sum": np.sum,
        "min": np.min,
        "max": np.max,
        "argmin": np.argmin,
        "argmax": np.argmax,
        "inclusive_scan": np.cumsum,
        "argsort": lambda x: np.argsort(x, kind="stable"),
        "compact_if": lambda x: x[x < np.float32(T)],
        "histogram_range": lambda x: np.histogram(x, BINS, range=(LO, HI)),
    }
    binary = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.divide,
        "minimum": np.fmin,  # NaN-ignoring, as tandem's minimum
        "maximum": np.fmax,
        "axpy": lambda x, y: np.float32(A) * x + y,
        "dot": np.dot,
    }
    # The catalogue's expression probes (`a·x + y·z − √x`, `Σ a·x + y`),
    # as numpy evaluates them: one temporary array per operation.
    exprs = {
        "map_expr": (lambda a: lambda x, y, z: a * x + y * z - np.sqrt(x), 3),
        "reduce_expr": (lambda a: lambda x, y: np.sum(a * x + y), 2),
    }
    if kernel in exprs:
        make, arity = exprs[kernel]
        return make(np.float32(1.5)), tuple(f32(rng, n) for _ in range(arity))
    # The f64 twins (`sum_f64`, ...): the same operation on float64 data,
    # numpy's default dtype.
    if kernel.endswith("_f64"):
        base = kernel[: -len("_f64")]
        if base in exprs:
            make, arity = exprs[base]
            return make(1.5), tuple(f64(rng, n) for _ in range(arity))
        if base in unary:
            return unary[base], (f64(rng, n),)
        if base in binary and base != "axpy":
            return binary[base], (f64(rng, n), f64(rng, n))
        if base == "sort":
            return np.sort, (f64(rng, n),)
        if base == "transpose":
            # A catalogue entry: `n` counts elements, in the near-square
            # shape the catalogue gives it (src/kernels/catalogue.rs).
            rows = max(1, round(n**0.5))
            cols = max(1, -(-n // rows))
            return (lambda a: np.ascontiguousarray(a.T)), (f64(rng, rows * cols).reshape(rows, cols),)
        if base == "gemm":
            # compare's own case (`gemm_of`): `n` is the side.
            return np.matmul, (f64(rng, n * n).reshape(n, n), f64(rng, n * n).reshape(n, n))
        if base == "compact":
            return (lambda x, m: x[m]), (f64(rng, n), u32(rng, n, 2).astype(bool))
        return None
    if kernel in unary:
        return unary[kernel], (f32(rng, n),)
    if kernel in binary:
        return binary[kernel], (f32(rng, n), f32(rng, n))
    if kernel == "exclusive_scan":
        return exclusive_cumsum, (u32(rng, n, 1 << 24),)
    if kernel == "compact":
        return (lambda x, m: x[m]), (f32(rng, n), u32(rng, n, 2).astype(bool))
    if kernel == "sort":
        return np.sort, (u32(rng, n),)
    if kernel == "sort_pairs":

        def pairs(k, v):
            order = np.argsort(k, kind="stable")
            return k[order], v[order]

        return pairs, (u32(rng, n), u32(rng, n))
    if kernel == "histogram":
        return (lambda x: np.bincount(x, minlength=BINS)), (u32(rng, n, BINS),)
    if kernel == "transpose":
        # compare's own case: `n` is the side.
        return (lambda a: np.ascontiguousarray(a.T)), (f32(rng, n * n).reshape(n, n),)
    if kernel == "gemm":
        return np.matmul, (f32(rng, n * n).reshape(n, n), f32(rng, n * n).reshape(n, n))
    return None


def blas():
    try:
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            if p.get("user_api") == "blas":
                return "{} {} ({}, {} threads)".format(
                    p.get("internal_api"),
                    p.get("version"),
                    p.get("architecture"),
                    p.get("num_threads"),
                )
    except Exception:  # threadpoolctl is optional
        pass
    return "unknown (pip install threadpoolctl to see it)"


def main():
    plan = json.load(sys.stdin)
    rng = np.random.default_rng(7)
    rows, errors = [], []
    for c in plan["cases"]:
        # One case that fails (numpy out of memory, say) costs its own cell,
        # not the whole column.
        try:
            made = case(c["kernel"], c["n"], rng)
            if made is None:
                continue
            f, args = made
            # `n` is a side for some of compare's cases and an element
            # count for others: the largest input must hold the case's
            # elements, or numpy would time another problem.
            size = max(np.size(a) for a in args)
            if "elements" in c and size != c["elements"]:
                raise ValueError(f"numpy's input has {size} elements, compare's case {c['elements']}")
            f(*args)  # warm-up: first-touch page faults, lazy BLAS start
            times = []
            for _ in range(max(3, int(c.get("reps", 5)))):
                t = time.perf_counter()
                f(*args)
                times.append(time.perf_counter() - t)
        except Exception as e:  # MemoryError included
            errors.append({"kernel": c["kernel"], "n": c["n"], "error": f"{type(e).__name__}: {e}"})
            continue
        times.sort()
        rows.append({"kernel": c["kernel"], "n": c["n"], "median_s": times[len(times) // 2]})
    json.dump({"numpy": np.__version__, "blas": blas(), "rows": rows, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
