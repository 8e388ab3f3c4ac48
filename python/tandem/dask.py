"""tandem on dask arrays: each chunk runs through tandem, and the partial
results are combined the way each reduction needs (sums of sums, extremes of
extremes, the first index of the best value with each chunk's offset,
histogram counts added).

Threads: a Dask worker already runs one task per thread, so by default each
worker thread gets its own tandem engine with **one** CPU thread
(``threads=1``): the machine's cores are Dask's to share out, and tandem
adds SIMD within each task. Pass ``threads=0`` (one per core) for a single
large task per worker, or ``device="gpu"`` to send chunks to the GPU.

>>> import dask.array as da, numpy as np, tandem.dask as td
>>> x = da.from_array(np.arange(10, dtype=np.float32), chunks=4)
>>> float(td.sum(x).compute())
45.0
"""

import threading

import dask
import dask.array as da
import numpy as np

from . import _tandem

_local = threading.local()


def _engine(threads, device):
    """This thread's engine for (threads, device), built once per thread."""
    key = (threads, device != "cpu")
    cache = getattr(_local, "engines", None)
    if cache is None:
        cache = _local.engines = {}
    if key not in cache:
        cache[key] = _tandem.Engine(threads=threads, gpu=key[1])
    return cache[key]


def _ready(block):
    # Chunks of a C-contiguous array are contiguous along the last axis;
    # a chunk that is not (a column slice) is copied once, as dask would.
    # A chunk sent between processes can arrive unaligned (pickle protocol
    # 5 hands over the bytes where they landed in the message): tandem reads
    # only aligned memory, so such a chunk is copied once too.
    b = np.ascontiguousarray(block)
    return b if b.flags.aligned else b.copy()


def _flat(block):
    return _ready(block).ravel()


def _reduction(name, x, threads, device, combine):
    def chunk(block, axis, keepdims):
        b = _flat(block)
        if b.size == 0:
            return np.zeros((0,) * block.ndim, dtype=block.dtype)
        fn = getattr(_tandem, name)
        v = fn(b, device=device, engine=_engine(threads, device))
        return np.full((1,) * block.ndim, v, dtype=block.dtype)

    def aggregate(parts, axis, keepdims):
        flat = np.asarray(parts).ravel()
        if flat.size == 0:
            if name != "sum":
                raise ValueError(f"{name}: zero-size array has no {name}, as numpy")
            v = x.dtype.type(0)
        else:
            v = combine(flat)
        if keepdims:
            return np.full((1,) * np.ndim(parts), v, dtype=x.dtype)
        return np.asarray(v, dtype=x.dtype)

    return da.reduction(x, chunk, aggregate, dtype=x.dtype, concatenate=True)


def sum(x, threads=1, device="cpu"):
    """The sum of a dask array (per-chunk tandem sums, then their sum)."""
    return _reduction("sum", x, threads, device, lambda p: p.sum(dtype=p.dtype))


def min(x, threads=1, device="cpu"):
    """The smallest element of a dask array (NaN ignored)."""
    return _reduction("min", x, threads, device, lambda p: p.min())


def max(x, threads=1, device="cpu"):
    """The largest element of a dask array (NaN ignored)."""
    return _reduction("max", x, threads, device, lambda p: p.max())


def _arg(name, x, threads, device):
    pick = np.argmin if name == "argmin" else np.argmax
    flat = x.ravel()
    offsets = np.cumsum((0,) + flat.chunks[0][:-1])

    def part(block, offset):
        if block.size == 0:
            return None
        e = _engine(threads, device)
        i = getattr(_tandem, name)(_flat(block), device=device, engine=e)
        return (block.ravel()[i], int(offset) + i)

    def combine(parts):
        parts = [p for p in parts if p is not None]
        if not parts:
            raise ValueError(f"{name}: zero-size array (or all NaN), as numpy")
        values = np.array([p[0] for p in parts])
        # The first chunk holding the best value has the smallest index.
        return parts[int(pick(values))][1]

    blocks = flat.to_delayed().ravel()
    parts = [dask.delayed(part)(b, o) for b, o in zip(blocks, offsets)]
    return dask.delayed(combine)(parts)


def argmin(x, threads=1, device="cpu"):
    """A dask.delayed index of the first smallest element of the flattened array."""
    return _arg("argmin", x, threads, device)


def argmax(x, threads=1, device="cpu"):
    """A dask.delayed index of the first largest element of the flattened array."""
    return _arg("argmax", x, threads, device)


def histogram(x, bins, range, threads=1, device="cpu"):
    """``(counts, edges)`` as ``np.histogram(x, bins, range)``; ``range`` is
    required (as in ``dask.array.histogram``), so chunks agree on the bins.
    ``counts`` is a lazy dask array."""
    edges = np.linspace(range[0], range[1], bins + 1)

    def part(block):
        b = _flat(block)
        if b.size == 0:
            return np.zeros(bins, dtype=np.int64)
        counts, _ = _tandem.histogram(b, bins=bins, range=range, device=device, engine=_engine(threads, device))
        return counts

    parts = [
        da.from_delayed(dask.delayed(part)(b), shape=(bins,), dtype=np.int64)
        for b in x.ravel().to_delayed().ravel()
    ]
    if not parts:
        return da.zeros(bins, dtype=np.int64), edges
    return da.stack(parts).sum(axis=0), edges


def map_blocks(expr, threads=1, device="cpu", **kwargs):
    """``tandem.map(expr, **kwargs)`` on each chunk: dask arrays (of one
    shape and chunking) and scalars by keyword, as in ``tandem.map``."""
    names = [k for k, v in kwargs.items() if isinstance(v, da.Array)]
    if not names:
        raise ValueError("map_blocks: pass at least one dask array")
    scalars = {k: v for k, v in kwargs.items() if k not in names}
    arrays = [kwargs[k] for k in names]
    # The output dtype, from the expression on empty inputs.
    empty = {k: np.zeros(0, dtype=kwargs[k].dtype) for k in names}
    meta = _tandem.map(expr, device="cpu", **empty, **scalars)

    def run(*blocks):
        args = {k: _ready(b) for k, b in zip(names, blocks)}
        return _tandem.map(expr, device=device, engine=_engine(threads, device), **args, **scalars)

    return da.map_blocks(run, *arrays, dtype=meta.dtype)
