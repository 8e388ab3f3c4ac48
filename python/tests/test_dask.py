"""tandem.dask: per-chunk tandem calls, combined correctly."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import tandem.dask as td  # noqa: E402


@pytest.mark.parametrize("chunks", [1000, 4096, 100_000])
def test_reductions_over_chunks_match_numpy(chunks):
    x = np.random.default_rng(0).uniform(-5, 5, 99_991).astype(np.float32)
    d = da.from_array(x, chunks=chunks)
    assert abs(float(td.sum(d).compute()) - float(x.astype(np.float64).sum())) <= 1e-4 * float(np.abs(x).sum())
    assert float(td.min(d).compute()) == x.min()
    assert float(td.max(d).compute()) == x.max()
    assert td.argmin(d).compute() == int(np.argmin(x))
    assert td.argmax(d).compute() == int(np.argmax(x))


def test_argmax_keeps_the_first_index_across_chunks():
    x = np.zeros(1000, np.float32)
    x[[10, 500, 900]] = 7.0
    assert td.argmax(da.from_array(x, chunks=300)).compute() == 10


def test_histogram_and_map_blocks_match_numpy():
    x = ((np.arange(50_000) % 997) + 0.5).astype(np.float32) / 10
    d = da.from_array(x, chunks=7_000)
    counts, edges = td.histogram(d, bins=25, range=(0.0, 100.0))
    want, want_edges = np.histogram(x, bins=25, range=(0.0, 100.0))
    np.testing.assert_array_equal(counts.compute(), want)
    np.testing.assert_allclose(edges, want_edges)
    y = da.from_array(x[::-1].copy(), chunks=7_000)
    out = td.map_blocks("a * x + y", a=2.0, x=d, y=y)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.compute(), 2.0 * x + x[::-1], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Sending large graph")
def test_a_process_cluster_runs_tandem_and_survives_its_errors():
    distributed = pytest.importorskip("distributed")
    n = 10_000_019  # ≥ 10^7, and not a multiple of the chunk size
    x = np.random.default_rng(3).uniform(0.0, 100.0, n).astype(np.float32)
    y = np.random.default_rng(4).uniform(-1.0, 1.0, n).astype(np.float32)
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        dx = da.from_array(x, chunks=1_000_000)
        dy = da.from_array(y, chunks=1_000_000)
        want = float(x.astype(np.float64).sum())
        assert abs(float(client.compute(td.sum(dx)).result()) - want) <= 1e-5 * want
        got = client.compute(td.map_blocks("a * x + y", a=0.5, x=dx, y=dy)).result()
        np.testing.assert_allclose(got, np.float32(0.5) * x + y, rtol=1e-6, atol=1e-6)
        counts, _ = td.histogram(dx, bins=64, range=(0.0, 100.0))
        np.testing.assert_array_equal(
            client.compute(counts).result(), np.histogram(x, bins=64, range=(0.0, 100.0))[0]
        )
        # A tandem error on a worker reaches the client as the same type...
        bad, _ = td.histogram(dx, bins=0, range=(0.0, 100.0))
        with pytest.raises(ValueError, match="bins must be"):
            client.compute(bad).result()
        with pytest.raises(TypeError, match="int16"):
            client.compute(td.sum(dx.astype(np.int16))).result()
        # ...and the cluster keeps serving.
        assert abs(float(client.compute(td.sum(dx)).result()) - want) <= 1e-5 * want
        assert len(client.scheduler_info()["workers"]) == 2
