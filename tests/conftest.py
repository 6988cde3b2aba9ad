import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# pytest-xdist's workers share the cores: each worker's TensorFlow (and the `zoo` processes it
# starts, which inherit this) takes its share of intra-op threads instead of all of them. The
# model tests ran 8% faster so on 2 cores (226 s against 246 s).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _workers))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
    os.environ.setdefault("OMP_NUM_THREADS", _threads)

import keras  # noqa: E402  (after the environment above)
import pytest  # noqa: E402


@pytest.fixture
def dtype_policy():
    """Sets a global Keras dtype policy for one test and restores float32 after it."""

    def set_policy(name):
        keras.config.set_dtype_policy(name)

    yield set_policy
    keras.config.set_dtype_policy("float32")
