"""tandem against numpy (and multiprocessing.Pool) on this machine, one run.

    python python/bench.py [--max-log2 24] [--devices cpu,auto,gpu]

Each cell is the best of several calls on numpy arrays in and numpy arrays
(or Python numbers) out, so tandem's figures include everything a user
pays: on the GPU, the upload of the inputs and the readback of the result.
numpy runs single-threaded except matmul (OpenBLAS); run it with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.

After each numpy case the script pauses (`QUIET_S`): OpenBLAS's worker
threads spin for a while after a call returns, and on a 2-core machine a
tandem call in that window shares the cores with them. Measured on the
2-core development VM (2026-12-07): tandem's 1024² float32 matmul right
after numpy's took 79 ms for its first call and 9.2 ms at best over the
next ten, against 4.8 ms after a pause of 0.05 s or more.
"""

import argparse
import multiprocessing
import os
import time

import sys

import numpy as np

# Import the installed package (`pip install ./python`), not the source
# folder beside this script, which lacks the compiled module.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
import tandem  # noqa: E402


# Seconds to wait after timing numpy, for OpenBLAS's threads to go idle.
QUIET_S = 0.25


def best(f, reps):
    f()
    t = float("inf")
    for _ in range(reps):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t


def _pool_chunk(args):
    a, x, y = args
    return a * x + y


def cases(n, rng):
    x = rng.uniform(0.5, 2.0, n).astype(np.float32)
    y = rng.uniform(0.5, 2.0, n).astype(np.float32)
    keys = rng.integers(0, 2**32, n, dtype=np.uint32)
    side = int(min(2048, 2 ** int(np.log2(n) / 2)))
    a = rng.standard_normal((side, side)).astype(np.float32)
    b = rng.standard_normal((side, side)).astype(np.float32)
    # float64, numpy's default dtype, read in place as float64.
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    # The expression rows, on float32 and on float64 arrays.
    exprs = [
        row
        for tag, u, v in (("", x, y), (" f64", x64, y64))
        for row in (
            (f"map a*x+y{tag}", lambda u=u, v=v: 3.0 * u + v, lambda d, u=u, v=v: tandem.map("a*x + y", a=3.0, x=u, y=v, device=d)),
            (
                f"sum(a*x+y){tag}",
                lambda u=u, v=v: np.sum(3.0 * u + v),
                lambda d, u=u, v=v: tandem.reduce("sum", "a*x + y", a=3.0, x=u, y=v, device=d),
            ),
            (
                f"map exp/sqrt{tag}",
                lambda u=u, v=v: np.exp(-u) * np.sqrt(v) + np.log(u),
                lambda d, u=u, v=v: tandem.map("exp(-x) * sqrt(y) + ln(x)", x=u, y=v, device=d),
            ),
        )
    ]
    return exprs + [
        ("sum", lambda: np.sum(x), lambda d: tandem.sum(x, device=d)),
        ("dot", lambda: np.dot(x, y), lambda d: tandem.dot(x, y, device=d)),
        ("cumsum", lambda: np.cumsum(x), lambda d: tandem.cumsum(x, device=d)),
        ("sort u32", lambda: np.sort(keys), lambda d: tandem.sort(keys, device=d)),
        ("argsort f32", lambda: np.argsort(x, kind="stable"), lambda d: tandem.argsort(x, device=d)),
        (
            "histogram",
            lambda: np.histogram(x, bins=256, range=(0.5, 2.0)),
            lambda d: tandem.histogram(x, bins=256, range=(0.5, 2.0), device=d),
        ),
        (f"matmul {side}²", lambda: a @ b, lambda d: tandem.matmul(a, b, device=d)),
        ("sum f64", lambda: np.sum(x64), lambda d: tandem.sum(x64, device=d)),
        ("dot f64", lambda: np.dot(x64, y64), lambda d: tandem.dot(x64, y64, device=d)),
        ("cumsum f64", lambda: np.cumsum(x64), lambda d: tandem.cumsum(x64, device=d)),
        ("sort f64", lambda: np.sort(x64), lambda d: tandem.sort(x64, device=d)),
        (f"matmul f64 {side}²", lambda: a64 @ b64, lambda d: tandem.matmul(a64, b64, device=d)),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-log2", type=int, default=22)
    p.add_argument("--devices", default="cpu,auto" + (",gpu" if tandem.info()["gpu"] else ""))
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args()
    devices = args.devices.split(",")
    info = tandem.info()
    print(f"tandem {tandem.__version__}: {info['threads']} threads, {info['simd']}, gpu: {info['gpu']}")
    print(f"numpy {np.__version__}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    rng = np.random.default_rng(0)
    for log2 in sorted({16, 20, args.max_log2}):
        n = 1 << log2
        print(f"\nn = 2^{log2}")
        head = f"{'kernel':16} {'numpy':>10}" + "".join(f" {d:>10} {d + '×np':>8}" for d in devices)
        print(head)
        for name, ref, tan in cases(n, rng):
            t_np = best(ref, args.reps)
            time.sleep(QUIET_S)
            row = f"{name:16} {t_np * 1e3:9.3f}ms"
            for d in devices:
                try:
                    t = best(lambda: tan(d), args.reps)
                except TypeError:  # declined on this device (f64 sorts on the GPU)
                    row += f" {'declined':>10} {'':>8}"
                    continue
                row += f" {t * 1e3:9.3f}ms {t_np / t:7.2f}×"
            print(row)
        # What a Python user would otherwise write to use every core.
        x = rng.uniform(0.5, 2.0, n).astype(np.float32)
        y = rng.uniform(0.5, 2.0, n).astype(np.float32)
        workers = os.cpu_count() or 2
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = [(3.0, xs, ys) for xs, ys in zip(np.array_split(x, workers), np.array_split(y, workers))]
            t_pool = best(lambda: np.concatenate(pool.map(_pool_chunk, parts)), 3)
        t_t = best(lambda: tandem.map("a*x + y", a=3.0, x=x, y=y, device="cpu"), args.reps)
        print(f"{'Pool.map a*x+y':16} {t_pool * 1e3:9.3f}ms   tandem cpu {t_t * 1e3:.3f}ms = {t_pool / t_t:.1f}× faster ({workers} processes)")


if __name__ == "__main__":
    main()
