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

# The modules that take longest on one worker (serial seconds on 2 cores), handed out first:
# pytest-xdist gives each worker a module when it is free, so a long one handed out last
# keeps one worker busy while the other idles (setup.cfg turns off xdist's own order, which
# puts modules with the most tests first, whatever they cost).
SLOW_MODULES = (
    "tests/zoo/models/test_flows.py",
    "tests/zoo/training/test_resume.py",
    "tests/zoo/training/test_multi_worker.py",
    "tests/test_docs.py",
    "tests/zoo/models/test_conditional_flows.py",
    "tests/zoo/training/test_distribute.py",
    "tests/zoo/test_cli.py",
    "tests/zoo/models/test_transflow.py",
)


def pytest_collection_modifyitems(items):
    """The modules of `SLOW_MODULES` first, in its order; the rest as collected."""
    rank = {path: i for i, path in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture
def dtype_policy():
    """Sets a global Keras dtype policy for one test and restores float32 after it."""

    def set_policy(name):
        keras.config.set_dtype_policy(name)

    yield set_policy
    keras.config.set_dtype_policy("float32")
