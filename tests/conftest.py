import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pytest


@pytest.fixture
def dtype_policy():
    """Sets a global Keras dtype policy for one test and restores float32 after it."""

    def set_policy(name):
        keras.config.set_dtype_policy(name)

    yield set_policy
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def two_moons_flow():
    """A small RealNVP + BatchNorm flow trained on two moons, shared by the slow tests."""
    from zoo import two_moons

    keras.utils.set_random_seed(0)
    train, test = two_moons.load(num_train=4000, num_test=2000, seed=0)
    flow = two_moons.build_flow()
    two_moons.fit(flow, train, epochs=15, verbose=0)
    return flow, train, test
