import os

import numpy as np
import pytest

import tandem

HAS_GPU = tandem.info()["gpu"] is not None
REQUIRE_GPU = os.environ.get("TANDEM_REQUIRE_GPU") == "1"


def devices():
    """cpu always; gpu when an adapter exists (a missing one fails with
    TANDEM_REQUIRE_GPU=1, as the Rust tests do)."""
    if REQUIRE_GPU and not HAS_GPU:
        raise RuntimeError(f"TANDEM_REQUIRE_GPU=1 but no GPU: {tandem.info().get('gpu_unavailable')}")
    return ["cpu", "gpu", "auto"] if HAS_GPU else ["cpu", "auto"]


@pytest.fixture(params=devices())
def device(request):
    return request.param


# Empty, one, odd, workgroup ± 1, and larger than one task.
SIZES = [0, 1, 7, 255, 256, 257, 100_003]


def rng(seed=0):
    return np.random.default_rng(seed)
