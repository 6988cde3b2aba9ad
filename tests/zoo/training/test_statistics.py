"""Running statistics recomputed for averaged weights (`zoo.training.statistics`)."""

import numpy as np
import tensorflow as tf

from tests.checks import randomize
from tfflows.bijectors import BatchNorm, _walk
from zoo import data, registry
from zoo.training import statistics


def _flow(**options):
    batches, info = data.load("digits", "train[:256]", batch_size=64, dequantize_seed=0)
    model = registry.create_model(
        "realnvp_flat", info, num_couplings=3, hidden_units=[16], **options
    )
    model.log_likelihood(next(iter(batches)))
    randomize(model.layers, seed=3)
    return model, batches


def test_a_refresh_averages_each_batch_norm_input_over_the_batches_equally():
    model, batches = _flow()
    norms = model.statistics_layers()
    assert len(norms) == 2 and all(isinstance(b, BatchNorm) for b in norms)
    momenta = [b.momentum for b in norms]
    # What each batch norm sees in training mode: the bijectors before it, each batch normalized
    # by its own statistics.
    expected, walk = [], model.all_bijectors
    for norm in norms:
        before = walk[: next(i for i, b in enumerate(walk) if b is norm)]
        moments = [
            tf.nn.moments(_walk.inverse_and_log_det(before, x, 3, training=True)[0], axes=[0])
            for x in batches
        ]
        expected.append([np.mean([m[i] for m in moments], axis=0) for i in (0, 1)])
    randomize(model.layers, seed=3)  # the walk above moved the running averages
    assert statistics.refresh(model, batches) == 4
    for norm, (mean, variance) in zip(norms, expected, strict=True):
        np.testing.assert_allclose(norm.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(norm.moving_variance.numpy(), variance, rtol=1e-4)
    assert [b.momentum for b in norms] == momenta


def test_a_refresh_leaves_the_noise_seeds_and_the_weights_as_they_were():
    model, batches = _flow(dequantization="variational")
    statistics_variables = {
        id(v) for b in model.statistics_layers() for v in (b.moving_mean, b.moving_variance)
    }
    before = {id(v): v.numpy() for v in model.variables}
    statistics.refresh(model, batches)
    first = [b.moving_mean.numpy() for b in model.statistics_layers()]
    for v in model.variables:
        if id(v) not in statistics_variables:
            np.testing.assert_array_equal(v.numpy(), before[id(v)], err_msg=v.path)
    statistics.refresh(model, batches)  # the same noise again: the same statistics
    for norm, mean in zip(model.statistics_layers(), first, strict=True):
        np.testing.assert_array_equal(norm.moving_mean.numpy(), mean)
        assert not np.allclose(mean, before[id(norm.moving_mean)])


def test_the_callback_refreshes_for_validation_only_and_for_good_at_the_end():
    model, batches = _flow()
    norms = model.statistics_layers()
    raw = [b.moving_mean.numpy() for b in norms]
    loads = []

    def fresh():
        loads.append(1)
        return batches

    callback = statistics.RefreshStatistics(fresh, steps=2)
    callback.set_model(model)
    callback.on_test_begin()
    during = [b.moving_mean.numpy() for b in norms]
    callback.on_test_end()
    after = [b.moving_mean.numpy() for b in norms]
    callback.on_train_end()
    final = [b.moving_mean.numpy() for b in norms]
    statistics.refresh(model, batches.take(2))
    for r, d, a, f, ref in zip(raw, during, after, final, norms, strict=True):
        assert not np.allclose(d, r)  # validation sees refreshed statistics ...
        np.testing.assert_array_equal(a, r)  # ... and the raw ones come back after it
        np.testing.assert_array_equal(f, d)  # each refresh on a fresh dataset: the same batches
        np.testing.assert_array_equal(ref.moving_mean.numpy(), f)
    assert len(loads) == 2
