import keras
import numpy as np
import pytest
from sklearn.datasets import make_moons

from tfflows import Flow, bijectors, masks, nets


@pytest.fixture(scope="session")
def moons_flow():
    """A small RealNVP with batch norm fitted to standardized two moons, shared by the slow
    tests: ``(flow, train, test)``. Built from tfflows alone (the library's tests do not
    import the zoo)."""
    keras.utils.set_random_seed(0)
    points, _ = make_moons(6000, noise=0.05, random_state=0)
    points = ((points - points[:4000].mean(0)) / points[:4000].std(0)).astype(np.float32)
    layers = []
    for i in range(6):
        layers.append(bijectors.AffineCoupling(masks.half(2, parity=i % 2), nets.MLP([64, 64], 2)))
        layers += [bijectors.BatchNorm([2])] if i < 5 else []
    flow = Flow(layers, event_shape=[2])
    flow.compile(optimizer=keras.optimizers.Adam(3e-3))
    flow.fit(points[:4000], batch_size=256, epochs=15, shuffle=True, verbose=0)
    return flow, points[:4000], points[4000:]
