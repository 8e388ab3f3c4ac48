"""tandem from Python: every function against numpy on every device, the
dtype and layout rules, exceptions, the GIL, fork safety and the engine."""

import math
import multiprocessing
import threading

import numpy as np
import pytest
from conftest import SIZES, rng

import tandem

DTYPES = [np.float32, np.int32, np.uint32]


def data(n, dtype, seed=0):
    r = rng(seed)
    if dtype == np.float32:
        return r.uniform(-10, 10, n).astype(np.float32)
    if dtype == np.int32:
        return r.integers(-1000, 1000, n, dtype=np.int32)
    return r.integers(0, 2000, n, dtype=np.uint32)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_match_numpy(device, n, dtype):
    x = data(n, dtype)
    s = tandem.sum(x, device=device)
    if dtype == np.float32:
        assert abs(s - float(x.astype(np.float64).sum())) <= 1e-5 * float(np.abs(x).sum()) + 1e-6
    else:
        # 32-bit integer sums wrap (numpy widens to int64).
        wrapped = int(x.astype(np.int64).sum()) & 0xFFFFFFFF
        if dtype == np.int32 and wrapped >= 2**31:
            wrapped -= 2**32
        assert s == wrapped
    if n == 0:
        for f in (tandem.min, tandem.max, tandem.argmin, tandem.argmax):
            with pytest.raises(ValueError, match="zero-size"):
                f(x, device=device)
        return
    assert tandem.min(x, device=device) == x.min()
    assert tandem.max(x, device=device) == x.max()
    assert tandem.argmin(x, device=device) == int(np.argmin(x))
    assert tandem.argmax(x, device=device) == int(np.argmax(x))
    y = data(n, dtype, seed=1)
    d = tandem.dot(x, y, device=device)
    if dtype == np.float32:
        assert abs(d - float(x.astype(np.float64) @ y.astype(np.float64))) <= 1e-5 * float(np.abs(x) @ np.abs(y)) + 1e-6


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scans_sorts_and_selection_match_numpy(device, n, dtype):
    x = data(n, dtype)
    c = tandem.cumsum(x, device=device)
    assert c.dtype == x.dtype and c.shape == x.shape
    if dtype == np.float32:
        np.testing.assert_allclose(c, np.cumsum(x, dtype=np.float64), rtol=1e-4, atol=1e-3)
    else:
        np.testing.assert_array_equal(c, np.cumsum(x, dtype=x.dtype))
    np.testing.assert_array_equal(tandem.sort(x, device=device), np.sort(x))
    a = tandem.argsort(x, device=device)
    assert a.dtype == np.int64
    np.testing.assert_array_equal(a, np.argsort(x, kind="stable"))
    keep = x > (x.dtype.type(5) if dtype != np.float32 else 0.0)
    np.testing.assert_array_equal(tandem.extract(keep, x, device=device), np.extract(keep, x))
    np.testing.assert_array_equal(tandem.compress(keep, x, device=device), np.compress(keep, x))
    np.testing.assert_array_equal(tandem.extract(keep.astype(np.uint32), x, device=device), np.extract(keep, x))


@pytest.mark.parametrize("n", SIZES)
def test_histogram_matches_numpy(device, n):
    # Values on a grid between bin edges: no value within an ulp of an edge.
    x = (rng(3).integers(0, 1000, n) + 0.5).astype(np.float32) / 10
    counts, edges = tandem.histogram(x, bins=20, range=(0.0, 100.0), device=device)
    want, want_edges = np.histogram(x, bins=20, range=(0.0, 100.0))
    np.testing.assert_array_equal(counts, want)
    np.testing.assert_allclose(edges, want_edges)
    # The right edge belongs to the last bin, as in numpy; outside values drop.
    y = np.array([0.0, 100.0, 100.5, -1.0, 50.0], dtype=np.float32)
    counts, _ = tandem.histogram(y, bins=4, range=(0.0, 100.0), device=device)
    np.testing.assert_array_equal(counts, np.histogram(y, bins=4, range=(0.0, 100.0))[0])
    if n:
        counts, edges = tandem.histogram(x, bins=7, device=device)
        want, want_edges = np.histogram(x, bins=7)
        assert counts.sum() == want.sum() == n
        np.testing.assert_allclose(edges, want_edges, rtol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (64, 64, 64), (65, 33, 129)])
def test_matmul_and_transpose_match_numpy(device, shape):
    m, k, n = shape
    a = rng(1).standard_normal((m, k)).astype(np.float32)
    b = rng(2).standard_normal((k, n)).astype(np.float32)
    c = tandem.matmul(a, b, device=device)
    assert c.shape == (m, n)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4 * k)
    np.testing.assert_array_equal(tandem.transpose(a, device=device), a.T)
    with pytest.raises(ValueError, match="do not align"):
        tandem.matmul(a, a.T[:1].copy() if k > 1 else np.zeros((2, 2), np.float32), device=device)


def test_correlate2d_matches_the_direct_sum(device):
    img = rng(4).standard_normal((37, 53)).astype(np.float32)
    f = rng(5).standard_normal((5, 3)).astype(np.float32)
    out = tandem.correlate2d(img, f, device=device)
    padded = np.pad(img.astype(np.float64), ((2, 2), (1, 1)))
    want = np.zeros_like(img, dtype=np.float64)
    for i in range(5):
        for j in range(3):
            want += f[i, j] * padded[i : i + 37, j : j + 53]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="mode"):
        tandem.correlate2d(img, f, mode="full")


@pytest.mark.parametrize("n", SIZES)
def test_expressions_match_numpy(device, n):
    x, y = data(n, np.float32, 1), data(n, np.float32, 2)
    got = tandem.map("a * x + sqrt(abs(y))", a=3.0, x=x, y=y, device=device)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, 3.0 * x + np.sqrt(np.abs(y)), rtol=1e-6, atol=1e-6)
    call, put = tandem.map(["max(x - y, 0)", "max(y - x, 0)"], x=x, y=y, device=device)
    np.testing.assert_array_equal(call, np.maximum(x - y, 0))
    np.testing.assert_array_equal(put, np.maximum(y - x, 0))
    s = tandem.reduce("sum", "x * y", x=x, y=y, device=device)
    assert abs(s - float(x.astype(np.float64) @ y)) <= 1e-5 * float(np.abs(x) @ np.abs(y)) + 1e-6
    if n:
        assert tandem.reduce("argmax", "x - y", x=x, y=y, device=device) == int(np.argmax(x - y))
        assert tandem.reduce("min", "x * 2", x=x, device=device) == (x * 2).min()
    n32 = data(n, np.int32)
    np.testing.assert_array_equal(tandem.map("n * 2 + k", n=n32, k=5, device=device), n32 * 2 + 5)
    u = data(n, np.uint32)
    np.testing.assert_array_equal(tandem.map("u / d", u=u, d=np.uint32(7), device=device), u // 7)


def test_wrong_dtypes_layouts_and_arguments_raise_clear_python_errors():
    x = np.arange(10, dtype=np.float32)
    with pytest.raises(TypeError, match=r"int16.*astype\(np.float64\)"):
        tandem.sum(np.arange(10, dtype=np.int16))
    with pytest.raises(TypeError, match="int16"):
        tandem.sum(np.arange(10, dtype=np.int16))
    with pytest.raises(TypeError, match="numpy array"):
        tandem.sum([1.0, 2.0])
    with pytest.raises(ValueError, match="C-contiguous"):
        tandem.sum(np.arange(20, dtype=np.float32)[::2])
    with pytest.raises(ValueError, match="C-contiguous"):
        tandem.matmul(np.ones((4, 3), np.float32).T, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="lengths differ"):
        tandem.dot(x, x[:5].copy())
    with pytest.raises(TypeError, match="same dtype"):
        tandem.dot(x, np.arange(10, dtype=np.int32))
    with pytest.raises(ValueError, match="device"):
        tandem.sum(x, device="tpu")
    with pytest.raises(ValueError, match="column 5"):
        tandem.map("x + ", x=x)
    with pytest.raises(ValueError, match="unknown name `z`"):
        tandem.map("x + z", x=x)
    with pytest.raises(ValueError, match="type mismatch"):
        tandem.map("x + n", x=x, n=np.arange(10, dtype=np.int32))
    with pytest.raises(ValueError, match="not used"):
        tandem.map("x + 1", x=x, y=x)
    with pytest.raises(ValueError, match="one shape"):
        tandem.map("x + y", x=x, y=np.arange(4, dtype=np.float32))
    with pytest.raises(ValueError, match="op must be"):
        tandem.reduce("mean", "x", x=x)
    with pytest.raises(ValueError, match="1-D"):
        tandem.sort(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="bins must be 1 to"):
        tandem.histogram(x, bins=0, range=(0.0, 1.0))
    with pytest.raises(ValueError, match="hi must exceed lo"):
        tandem.histogram(x, bins=4, range=(1.0, 0.0))
    empty = np.zeros(0, np.float32)
    for f in (tandem.min, tandem.max, tandem.argmin, tandem.argmax):
        with pytest.raises(ValueError, match="zero-size array"):
            f(empty)
    assert tandem.sum(empty) == 0.0 and tandem.cumsum(empty).size == 0


def test_a_forced_missing_gpu_is_a_runtime_error():
    e = tandem.Engine(gpu=False)
    with pytest.raises(RuntimeError, match="no GPU") as err:
        tandem.sum(np.ones(4, np.float32), device="gpu", engine=e)
    # The message says how to get one.
    assert "apt-get install mesa-vulkan-drivers" in str(err.value)


def test_the_engine_reports_and_explains():
    e = tandem.Engine(threads=2, gpu=False)
    info = e.info()
    assert info["threads"] == 2 and info["gpu"] is None
    x = np.ones(1000, np.float32)
    before = e.stats()["cpu_runs"]
    assert tandem.sum(x, engine=e) == 1000.0
    assert e.stats()["cpu_runs"] == before + 1
    text = e.explain("sum", x)
    assert text.startswith("sum: 1000 elements") and "cpu" in text
    assert e.explain("map", "a * x", a=2.0, x=x).startswith("map_expr")
    assert "Engine(threads=2" in repr(e)
    assert tandem.explain("sum", x).startswith("sum")


def test_the_gil_is_released_while_a_kernel_runs():
    x = rng(7).standard_normal(1 << 23).astype(np.float32)
    running = threading.Event()
    done = threading.Event()
    progress = []

    def work():
        for _ in range(20):
            running.set()
            tandem.sort(x, device="cpu")
            if len(progress) > 1000:
                break
        done.set()

    t = threading.Thread(target=work)
    t.start()
    running.wait()
    # Python code runs on this thread while the other is inside tandem: with
    # the GIL held, this loop could not advance during a call.
    while not done.is_set():
        progress.append(1)
    t.join()
    assert len(progress) > 1000


def _child_sum(i):
    x = np.full(100_000 + i, 2.0, dtype=np.float32)
    return tandem.sum(x) + tandem.map("x * 0 + 1", x=x).sum()


def test_fork_after_use_does_not_hang():
    # The parent uses tandem first: its engine (and rayon pool) exists.
    assert tandem.sum(np.ones(1 << 20, np.float32)) == float(1 << 20)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.map_async(_child_sum, range(4)).get(timeout=120)
    assert got == [2.0 * (100_000 + i) + (100_000 + i) for i in range(4)]
    # The parent's engine still works.
    assert tandem.sum(np.ones(10, np.float32)) == 10.0


def test_arrays_are_read_in_place_and_never_written():
    x = np.arange(1 << 16, dtype=np.float32)
    before = x.copy()
    for f in (tandem.sort, tandem.cumsum, tandem.argsort):
        f(x[::-1].copy())
    tandem.map("x * 2", x=x)
    np.testing.assert_array_equal(x, before)
    # Results are new arrays that own their memory.
    y = tandem.map("x + 1", x=x)
    assert y.flags.owndata or y.base is not None
    assert not np.shares_memory(x, y)


def test_accepted_arrays_are_read_where_they_lie():
    # The memory a kernel reads is the array's own: no copy on the way in,
    # on the Rust side (the address) or the Python side (tracemalloc).
    import tracemalloc

    for dtype in (np.float32, np.int32, np.uint32):
        x = np.ones(1 << 24, dtype)
        assert tandem._tandem._read_address(x) == x.ctypes.data
    x = np.ones(1 << 24, np.float32)
    tandem.sum(x)
    tracemalloc.start()
    try:
        assert tandem.sum(x) == float(1 << 24)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 16, f"tandem.sum allocated {peak} bytes through Python"


F64_SIZES = [0, 1, 7, 255, 256, 257, 4099, 70_001]


@pytest.mark.parametrize("n", F64_SIZES)
def test_float64_arrays_run_in_float64_against_numpy(device, n):
    """numpy's default dtype, without a cast: f64 sums within a few ulp of
    math.fsum, exact sorts and extremes."""
    import math

    rng = np.random.default_rng(n)
    x = rng.uniform(-10, 10, n)
    y = rng.uniform(-1, 1, n)
    assert x.dtype == np.float64
    s = tandem.sum(x, device=device)
    assert isinstance(s, float)
    assert abs(s - math.fsum(x)) <= 64 * np.finfo(np.float64).eps * float(np.abs(x).sum()) + 1e-300
    d = tandem.dot(x, y, device=device)
    assert abs(d - math.fsum(x * y)) <= 64 * np.finfo(np.float64).eps * float(np.abs(x * y).sum()) + 1e-300
    c = tandem.cumsum(x, device=device)
    assert c.dtype == np.float64
    np.testing.assert_allclose(c, np.cumsum(x), rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(x).sum())))
    np.testing.assert_array_equal(tandem.sort(x, device=device), np.sort(x))
    np.testing.assert_array_equal(tandem.argsort(x, device=device), np.argsort(x, kind="stable"))
    if n:
        assert tandem.min(x, device=device) == x.min()
        assert tandem.max(x, device=device) == x.max()
        assert tandem.argmin(x, device=device) == int(np.argmin(x))
        assert tandem.argmax(x, device=device) == int(np.argmax(x))
    keep = x > 0
    np.testing.assert_array_equal(tandem.extract(keep, x, device=device), x[keep])
    counts, edges = tandem.histogram(x, bins=37, range=(-7.3, 8.9), device=device)
    want, want_edges = np.histogram(x, bins=37, range=(-7.3, 8.9))
    # Bins are computed as numpy does, in float64; a value within an ulp of
    # an edge may still land one bin over.
    assert np.abs(counts - want).sum() <= 2
    assert counts.sum() == want.sum()
    np.testing.assert_allclose(edges, want_edges)


def test_float64_matrices_and_images(device):
    rng = np.random.default_rng(9)
    a, b = rng.uniform(-1, 1, (67, 45)), rng.uniform(-1, 1, (45, 33))
    c = tandem.matmul(a, b, device=device)
    assert c.dtype == np.float64
    np.testing.assert_allclose(c, a @ b, rtol=1e-13, atol=1e-13 * 45)
    t = tandem.transpose(a, device=device)
    np.testing.assert_array_equal(t, a.T)
    img, f = rng.uniform(-1, 1, (40, 31)), rng.uniform(-1, 1, (3, 5))
    got = tandem.correlate2d(img, f, boundary="nearest", device=device)
    padded = np.pad(img, ((1, 1), (2, 2)), mode="edge")
    want = np.zeros_like(img)
    for i in range(3):
        for j in range(5):
            want += f[i, j] * padded[i : i + 40, j : j + 31]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    with pytest.raises(TypeError, match="must both be float32 or both float64"):
        tandem.matmul(a, b.astype(np.float32), device=device)


def test_float64_arrays_are_read_in_place():
    x = np.arange(1000, dtype=np.float64)
    assert tandem._tandem._read_address(x) == x.ctypes.data


@pytest.mark.parametrize("n", F64_SIZES)
def test_float64_expressions_run_in_float64_against_numpy(device, n):
    """numpy's float64 arrays in expressions, no cast: Python floats take
    float64 beside them (NEP 50), results are float64 and within a few
    float64 ulp of numpy's."""
    rng = np.random.default_rng(n + 1)
    x, y = rng.uniform(-10, 10, n), rng.uniform(0.1, 2, n)
    eps = np.finfo(np.float64).eps
    got = tandem.map("a * x + sqrt(y)", a=0.1, x=x, y=y, device=device)
    assert got.dtype == np.float64 and got.shape == x.shape
    # 0.1 as float32 would be off by 1.5e-9 relative: far outside this.
    want = 0.1 * x + np.sqrt(y)
    np.testing.assert_allclose(got, want, rtol=4 * eps, atol=4 * eps * np.abs(0.1 * x).max(initial=0))
    np.testing.assert_allclose(
        tandem.map("exp(-x * x / 2) * ln(y)", x=x, y=y, device=device),
        np.exp(-x * x / 2) * np.log(y),
        rtol=16 * eps,
        atol=1e-300,
    )
    call, put = tandem.map(["max(x - y, 0)", "max(y - x, 0)"], x=x, y=y, device=device)
    np.testing.assert_array_equal(call, np.maximum(x - y, 0))
    np.testing.assert_array_equal(put, np.maximum(y - x, 0))
    s = tandem.reduce("sum", "x * y", x=x, y=y, device=device)
    assert isinstance(s, float)
    exact = math.fsum(x * y)
    assert abs(s - exact) <= 64 * eps * float(np.abs(x * y).sum()) + 1e-300
    if n:
        assert tandem.reduce("argmax", "x - y", x=x, y=y, device=device) == int(np.argmax(x - y))
        assert tandem.reduce("min", "x * 2", x=x, device=device) == (x * 2).min()
    # Mixed widths: a float32 array cast inside the expression.
    q = x.astype(np.float32)
    got = tandem.map("f64(q) * x", q=q, x=x, device=device)
    np.testing.assert_array_equal(got, q.astype(np.float64) * x)
    with pytest.raises(ValueError, match="type mismatch"):
        tandem.map("q * x", q=q, x=x, device=device)
    # np.float64 scalars are float64; float32 arrays keep float32 results.
    np.testing.assert_array_equal(tandem.map("x * a", x=x, a=np.float64(0.1), device=device), x * 0.1)
    assert tandem.map("q * 0.5", q=q, device=device).dtype == np.float32