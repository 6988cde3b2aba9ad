"""Conditional flows p(x | c): the context through couplings, autoregressive transforms and
FactorOut, a conditional base, `Flow.log_prob(x, c)` / `sample(n, context=c)` / `fit(x, c)`,
and the optima they reach against the truth."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_log_dets_match_autodiff, assert_round_trip, randomize
from tfflows import Flow, bijectors, masks, nets
from tfflows.bijectors import _spline


def _conditional_coupling(cls, mask, context_size=3, seed=0):
    outputs = {
        bijectors.AdditiveCoupling: 1,
        bijectors.AffineCoupling: 2,
        bijectors.RationalQuadraticCoupling: _spline.num_parameters(8),
    }[cls]
    units = outputs * mask.transformed_shape[-1]
    if mask.event_ndims == 1:
        net = nets.MLP([16], units, activation="tanh")
    else:
        net = nets.ResNet(8, 1, units, activation="tanh")
    coupling = cls(mask, net, context_size=context_size)
    randomize(
        coupling.keras_layers, seed, 0.1 if cls is bijectors.RationalQuadraticCoupling else 0.3
    )
    return coupling


CLASSES = [
    bijectors.AdditiveCoupling,
    bijectors.AffineCoupling,
    bijectors.RationalQuadraticCoupling,
]


@pytest.mark.parametrize("mask", [masks.half(6), masks.checkerboard((4, 4, 2))], ids=repr)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_conditional_coupling_inverts_for_each_context_and_depends_on_it(cls, mask):
    coupling = _conditional_coupling(cls, mask)
    x = tf.random.stateless_normal((4, *mask.event_shape), [0, 1])
    context = tf.random.stateless_normal((4, 3), [0, 2])
    assert_round_trip(coupling, x, atol=1e-4, context=context)
    assert_log_dets_match_autodiff(coupling, x, context=context)
    other = coupling.forward(x, context=context + 1.0)
    assert np.max(np.abs(other - coupling.forward(x, context=context))) > 1e-3
    with pytest.raises(ValueError, match=r"is conditional \(context_size=3\): pass context"):
        coupling.forward(x)


def _two_class_data(n, seed=0):
    """Two classes of 2-D Gaussians: class 0 at (-2, 0) with sd (0.5, 1), class 1 at (2, 1)
    with sd (1, 0.3)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    means = np.array([[-2.0, 0.0], [2.0, 1.0]])
    sds = np.array([[0.5, 1.0], [1.0, 0.3]])
    points = means[labels] + sds[labels] * rng.normal(size=(n, 2))
    return points.astype(np.float32), labels.astype(np.int32), means, sds


def test_a_conditional_base_alone_learns_each_class_mean_and_scale():
    keras.utils.set_random_seed(0)
    points, labels, _, sds = _two_class_data(8000)
    flow = Flow([], event_shape=[2], context_size=2, conditional_base=True)
    flow.compile(optimizer=keras.optimizers.Adam(5e-2))
    history = flow.fit(points, labels, batch_size=500, epochs=30, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] - 1.0
    for c in range(2):
        base = flow.base(context=flow.as_context([c]))
        mine = points[labels == c]
        # The maximum-likelihood optimum: each class's sample mean and standard deviation.
        np.testing.assert_allclose(base.mean()[0], mine.mean(0), atol=0.05)
        np.testing.assert_allclose(base.stddev()[0], mine.std(0), rtol=0.05)
    # The exact conditional entropy of the data is the optimum of the held-out loss.
    entropy = np.mean([np.sum(np.log(sds[c] * np.sqrt(2 * np.pi * np.e))) for c in labels])
    held_out = -np.mean(flow.log_prob(points, labels))
    assert held_out == pytest.approx(entropy, abs=0.05)


def test_a_conditional_flow_fits_classifies_and_samples_each_class(tmp_path):
    keras.utils.set_random_seed(1)
    points, labels, means, _ = _two_class_data(6000, seed=1)
    layers = [
        _conditional_coupling(bijectors.AffineCoupling, masks.half(2, i % 2), 2, seed=i)
        for i in range(4)
    ]
    for layer in layers:  # start near the identity
        randomize(layer.keras_layers, seed=7, scale=0.01)
    flow = Flow(layers, event_shape=[2], context_size=2)
    flow.compile(optimizer=keras.optimizers.Adam(1e-2))
    flow.fit(points[:5000], labels[:5000], batch_size=250, epochs=20, verbose=0)
    test, test_labels = points[5000:], labels[5000:]
    # A generative classifier, p(c | x) by Bayes' rule (equal priors): near Bayes-optimal
    # (the classes barely overlap).
    scores = np.stack([flow.log_prob(test, np.full(len(test), c)) for c in range(2)], axis=1)
    assert np.mean(scores.argmax(1) == test_labels) > 0.99
    for c in range(2):
        draws = flow.sample(2000, seed=[c, 3], context=c).numpy()
        np.testing.assert_allclose(draws.mean(0), means[c], atol=0.15)
    path = os.path.join(tmp_path, "conditional.keras")
    flow.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.log_prob(test, test_labels), flow.log_prob(test, test_labels))


def test_context_reaches_autoregressive_transforms_and_factor_out_sub_flows():
    made = nets.MADE(4, 2, [16], context_size=3)
    maf = bijectors.MaskedAutoregressive(made)
    randomize(maf.keras_layers, seed=2)
    x = tf.random.stateless_normal((5, 4), [0, 3])
    context = tf.one_hot([0, 1, 2, 0, 1], 3)
    assert_round_trip(maf, x, atol=1e-4, context=context)
    assert_log_dets_match_autodiff(maf, x, context=context)
    inner = _conditional_coupling(bijectors.AffineCoupling, masks.checkerboard((4, 4, 2)), 3)
    flow = Flow(
        [bijectors.Squeeze(), bijectors.FactorOut([inner], (4, 4, 4))],
        event_shape=[8, 8, 1],
        context_size=3,
    )
    images = tf.random.stateless_uniform((2, 8, 8, 1), [0, 4])
    z = flow.encode(images, context=[0, 2])
    np.testing.assert_allclose(flow.decode(z, context=[0, 2]), images, atol=1e-5)
    assert np.all(np.abs(flow.log_prob(images, [0, 2]) - flow.log_prob(images, [1, 1])) > 1e-4)


def test_bad_contexts_are_named():
    coupling = _conditional_coupling(bijectors.AffineCoupling, masks.half(2, 0), 2)
    flow = Flow([coupling], event_shape=[2], context_size=2)
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"conditional \(context_size=2\): pass a context"):
        flow.log_prob(x)
    with pytest.raises(ValueError, match=r"context must be \[batch, 2\].*got shape \[3, 5\]"):
        flow.log_prob(x, np.zeros((3, 5), np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class labels must be < 2"):
        flow.log_prob(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="give fit / evaluate / predict"):
        flow.compile(optimizer="adam")
        flow.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="is unconditional"):
        Flow([], event_shape=[2]).log_prob(x, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="takes a context of 2, the flow's context_size is 3"):
        Flow([coupling], event_shape=[2], context_size=3)
    with pytest.raises(ValueError, match="conditional_base needs a context"):
        Flow([], event_shape=[2], conditional_base=True)
