import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfflows
from tests.checks import autodiff_log_det, fresh, randomize
from tests.model_checks import ModelChecks
from zoo import data
from zoo.models import flows

SMALL = {
    "nice": lambda shape, k, **kw: flows.NICE(shape, k, hidden_units=(32, 32), **kw),
    "realnvp_flat": lambda shape, k, **kw: flows.RealNVP(
        shape, k, architecture="flat", num_couplings=4, hidden_units=(32,), **kw
    ),
    "realnvp_multiscale": lambda shape, k, **kw: flows.RealNVP(
        shape, k, num_scales=2, filters=8, num_blocks=1, **kw
    ),
    "realnvp_packed": lambda shape, k, **kw: flows.RealNVP(
        shape, k, num_scales=2, filters=8, num_blocks=1, checkerboard="packed", **kw
    ),
    "glow": lambda shape, k, **kw: flows.Glow(
        shape, k, num_scales=2, steps_per_scale=1, filters=8, num_blocks=1, **kw
    ),
    "nsf": lambda shape, k, **kw: flows.Glow(
        shape, k, num_scales=2, steps_per_scale=1, filters=8, coupling="spline", bins=4, **kw
    ),
    "maf": lambda shape, k, **kw: flows.MAF(shape, k, num_layers=2, hidden_units=(32,), **kw),
    "iaf": lambda shape, k, **kw: flows.MAF(
        shape, k, num_layers=2, hidden_units=(32,), fast="forward", **kw
    ),
}


def randomized(model, seed=0):
    randomize(model.bijector_layers, seed=seed, scale=0.05)
    return model


def images(shape, n=6, seed=0):
    return tf.random.stateless_uniform((n, *shape), seed=[seed, 0], minval=0.02, maxval=0.98)


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_log_prob_is_base_density_plus_autodiff_log_det(kind):
    shape = (4, 4, 1)
    model = randomized(SMALL[kind](shape, 256))
    x = images(shape)
    z = model.encode(x)
    log_det = autodiff_log_det(lambda t: model.encode(t), x)
    base = model.base().log_prob(z).numpy()
    np.testing.assert_allclose(model.log_prob(fresh(x)), base + log_det, atol=2e-3)
    np.testing.assert_allclose(model.decode(z), x, atol=1e-4)


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_fit_lowers_the_loss_and_evaluate_reports_nats_and_bits(kind, tmp_path):
    keras.utils.set_random_seed(0)
    train, info = data.load("digits", "train[:512]", batch_size=64, shuffle=True, seed=0)
    test, _ = data.load("digits", "test", batch_size=297, dequantize_seed=0)
    model = SMALL[kind](info.image_shape, info.num_levels)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    before = model.evaluate(test, verbose=0, return_dict=True)
    model.fit(train, epochs=2, verbose=0, shuffle=False)
    after = model.evaluate(test, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] - 1.0, (before, after)
    x = next(iter(test))
    mean_log_prob = float(tf.reduce_mean(model.log_prob(x)))
    np.testing.assert_allclose(after["loss"], -mean_log_prob, rtol=1e-4)
    expected_bits = (-mean_log_prob + 64 * math.log(17)) / (64 * math.log(2))
    np.testing.assert_allclose(after["bits_per_dim"], expected_bits, rtol=1e-4)

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(fresh(x)))
    samples = model.sample(5, temperature=0.8, seed=[1, 2])
    assert samples.shape == (5, 8, 8, 1)
    assert 0.0 <= float(tf.reduce_min(samples)) and float(tf.reduce_max(samples)) <= 1.0


def test_multiscale_structure_factors_out_at_every_scale():
    model = flows.RealNVP((8, 8, 1), 17, num_scales=3, filters=4, num_blocks=1)
    factor_outs, bijectors = 0, model.bijectors
    while any(isinstance(b, tfflows.bijectors.FactorOut) for b in bijectors):
        (inner,) = [b for b in bijectors if isinstance(b, tfflows.bijectors.FactorOut)]
        couplings = [b for b in bijectors if isinstance(b, tfflows.bijectors.AffineCoupling)]
        assert [c.mask.kind for c in couplings] == ["checkerboard"] * 3 + ["channel"] * 3
        factor_outs, bijectors = factor_outs + 1, inner.bijectors
    couplings = [b for b in bijectors if isinstance(b, tfflows.bijectors.AffineCoupling)]
    assert factor_outs == 2 and [c.mask.kind for c in couplings] == ["checkerboard"] * 4
    assert couplings[0].mask.event_shape == (2, 2, 4)
    assert model.latent_shape == (8, 8, 1)
    packed = flows.RealNVP((8, 8, 1), 17, num_scales=2, filters=4, checkerboard="packed")
    first = next(b for b in packed.bijectors if isinstance(b, tfflows.bijectors.AffineCoupling))
    assert first.mask.kind == "packed_checkerboard"
    assert first.mask.conditioning_shape == first.mask.transformed_shape == (8, 4, 1)
    assert flows.RealNVP.from_config(packed.get_config()).checkerboard == "packed"


def test_bad_configurations_and_inputs_are_named():
    with pytest.raises(ValueError, match="divisible by 4; got an image of 6x6"):
        flows.RealNVP((6, 6, 1), 256, num_scales=3)
    with pytest.raises(ValueError, match="architecture"):
        flows.RealNVP((8, 8, 1), 256, architecture="glow")
    with pytest.raises(ValueError, match="width divisible by 8; got 12"):
        flows.RealNVP((12, 12, 1), 256, num_scales=3, checkerboard="packed")
    with pytest.raises(ValueError, match="checkerboard must be one of"):
        flows.RealNVP((8, 8, 1), 256, checkerboard="gathered")
    model = SMALL["realnvp_multiscale"]((4, 4, 1), 256)
    with pytest.raises(ValueError, match=r"\[batch, 4, 4, 1\].*\[2, 8, 8, 1\]"):
        model.log_prob(tf.zeros((2, 8, 8, 1)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"values in \[0, 1\]"):
        model.log_prob(tf.fill((2, 4, 4, 1), 1.5))
    nice = SMALL["nice"]((4, 4, 1), 256)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"values in \[0, 1\]"):
        nice.log_prob(tf.fill((2, 4, 4, 1), -0.5))


def _bits_after_steps(policy, steps=40):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    train, info = data.load("digits", "train", batch_size=64, dequantize_seed=1, seed=0)
    test, _ = data.load("digits", "test", batch_size=297, dequantize_seed=0)
    model = flows.RealNVP(info.image_shape, info.num_levels, num_scales=2, filters=16, num_blocks=1)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(train.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return model, model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]


def test_bfloat16_bits_per_dim_tracks_float32(dtype_policy):
    _, bits32 = _bits_after_steps("float32")
    model, bits16 = _bits_after_steps("mixed_bfloat16")
    assert model.bijector_layers[0].compute_dtype == "bfloat16"
    assert abs(bits16 - bits32) < 0.05, (bits32, bits16)


def test_evaluate_is_the_per_example_mean_whatever_the_batch_size():
    model = randomized(SMALL["realnvp_flat"]((8, 8, 1), 17))
    model.compile(optimizer="adam")
    figures = [
        model.evaluate(
            data.load("digits", "test", batch_size=b, dequantize_seed=0)[0],
            verbose=0,
            return_dict=True,
        )
        for b in (297, 128, 50)
    ]
    for f in figures[1:]:
        np.testing.assert_allclose(f["loss"], figures[0]["loss"], rtol=1e-5)
        np.testing.assert_allclose(f["bits_per_dim"], figures[0]["bits_per_dim"], rtol=1e-5)


# The spline Glow and MAF (the IAF is its class) run them class-conditional
# (tests/zoo/models/test_conditional_flows.py); the packed RealNVP is the multi-scale one with
# other masks (the couplings' tests run every mask).
@pytest.mark.parametrize("kind", sorted(set(SMALL) - {"nsf", "maf", "iaf", "realnvp_packed"}))
def test_shared_model_checks(kind, tmp_path):
    batch = images((8, 8, 1), n=8)
    ModelChecks(
        make=lambda **kw: SMALL[kind]((8, 8, 1), 17, **kw),
        batch=batch,
        outputs=lambda model, x: {"log_prob": model.log_prob(fresh(x)), "z": model.encode(x)},
        signature_inputs=lambda model, x: {
            "log_prob": {"images": x.numpy()},
            "encode": {"images": x.numpy()},
            "decode": {"z": model.encode(x).numpy()},
            "sample": {"z": 0.5 * model.encode(x).numpy()},
        },
        atol=1e-3,
    ).run_all(tmp_path)


def test_the_nan_check_holds_when_clean_float16_steps_overflow():
    """How many clean float16 steps overflow while the loss scale comes down depends on the
    weights and on the CPU's float16 arithmetic; the shared check counts the NaN batch's own
    skip, so it holds when the first steps of a scale started at 2^26 overflow too."""
    checks = ModelChecks(
        make=lambda **kw: SMALL["nice"]((4, 4, 1), 17, **kw),
        batch=images((4, 4, 1), n=8),
        outputs=lambda model, x: {"log_prob": model.log_prob(x)},
    )
    model = checks._compiled(dtype="mixed_float16")
    model.optimizer.build(model.trainable_variables)
    model.optimizer.dynamic_scale.assign(2.0**26)
    checks.check_non_finite_step_is_skipped(model)
    # At least four clean steps overflowed (each halves the scale) before the NaN batch.
    assert float(model.optimizer.dynamic_scale) <= 2.0**22


def test_nice_configs_saved_before_data_init_load_with_the_identity_start():
    nice = SMALL["nice"]((4, 4, 1), 256, data_init=False)
    older = {k: v for k, v in nice.get_config().items() if k != "data_init"}
    assert flows.NICE.from_config(older).get_config() == nice.get_config()
    assert SMALL["nice"]((4, 4, 1), 256).get_config()["data_init"] is True


def test_variational_dequantization_starts_at_the_uniform_bound_then_tightens_it(tmp_path):
    keras.utils.set_random_seed(0)
    train, info = data.load("digits", "train[:512]", batch_size=64, shuffle=True, seed=0)
    test, _ = data.load("digits", "test", batch_size=297, dequantize_seed=0)

    def make(dequantization):
        model = SMALL["realnvp_flat"](
            info.image_shape, info.num_levels, dequantization=dequantization
        )
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        return model

    uniform, variational = make("uniform"), make("variational")
    variational.set_weights(
        [*uniform.get_weights(), *variational.get_weights()[len(uniform.get_weights()) :]]
    )
    # q starts as U[0, 1): the same bound, up to the noise draws (297 x 64 of them).
    figures = [m.evaluate(test, verbose=0, return_dict=True) for m in (uniform, variational)]
    assert abs(figures[0]["bits_per_dim"] - figures[1]["bits_per_dim"]) < 0.01, figures
    # Trained jointly, q moves off uniform (log q > 0 on average, where the data are) and the
    # bound falls.
    variational.fit(train, epochs=3, verbose=0)
    after = variational.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
    assert after < figures[1]["bits_per_dim"] - 0.3, (figures, after)
    x = next(iter(test))
    levels = tf.floor(x * info.num_levels)
    assert float(tf.reduce_mean(variational.dequantizer(levels)[1])) > 1.0
    # The .keras file keeps q: from the same point of the noise stream, the same bound.
    path = str(tmp_path / "variational.keras")
    variational.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["dequantization"] == "variational"
    loaded.dequantizer.noise.state.assign(variational.dequantizer.noise.state)
    np.testing.assert_allclose(
        loaded.log_likelihood(x), variational.log_likelihood(fresh(x)), rtol=1e-5, atol=1e-3
    )
    with pytest.raises(ValueError, match="dequantization must be one of"):
        SMALL["nice"]((4, 4, 1), 256, dequantization="gaussian")


@pytest.mark.parametrize("dequantization", ["uniform", "variational"])
def test_importance_weighted_bound_rises_to_the_exact_discrete_likelihood(dequantization):
    """With no bijectors the density is N(0, I) on the data scale, so each level's probability
    is exact: P(l) = Phi((l + 1) / K) - Phi(l / K) per value. The bound with S draws stays below
    log P + D log K and reaches it as S grows; one draw is the training bound."""
    from scipy.stats import norm

    keras.utils.set_random_seed(0)
    k, shape = 4, (2, 2, 1)
    model = flows.ImageFlow([], shape, k, dequantization=dequantization)
    levels = tf.constant(np.random.default_rng(0).integers(0, k, (5, *shape)), tf.float32)
    x = (levels + 0.5) / k
    exact = np.log(norm.cdf((levels + 1) / k) - norm.cdf(levels / k)).sum(axis=(1, 2, 3))
    exact += math.prod(shape) * math.log(k)
    model.importance_weighted_log_likelihood(x, 1)  # builds the dequantizer
    if dequantization == "variational":  # q away from uniform: the one-draw bound is looser
        randomize([model.dequantizer], seed=1, scale=0.1)
    draws = model.importance_weighted_log_likelihood(tf.repeat(x, 4096, axis=0), 1)
    one = tf.reduce_mean(tf.reshape(draws, [5, 4096]), axis=1).numpy()  # E[log w]
    many = model.importance_weighted_log_likelihood(x, 4096, seed=[0, 1]).numpy()
    gap_one, gap_many = np.mean(exact - one), np.mean(exact - many)
    if dequantization == "uniform":  # the density barely varies in a cell: both are close
        np.testing.assert_allclose(many, exact, atol=3e-3)
        assert 0 < gap_one < 0.01
    else:  # 4096 draws close most of a gap of ~0.17 nats
        np.testing.assert_allclose(many, exact, atol=0.05)
        assert gap_one > 0.1 and abs(gap_many) < gap_one / 5, (gap_one, gap_many)
    with pytest.raises(ValueError, match="samples must be a whole number >= 1"):
        model.importance_weighted_log_likelihood(x, 0)


def test_glow_structure_and_its_ablations():
    def kinds(model):
        out, bijectors = [], model.bijectors
        while bijectors:
            out.append([type(b).__name__ for b in bijectors])
            inner = [b for b in bijectors if isinstance(b, tfflows.bijectors.FactorOut)]
            bijectors = inner[0].bijectors if inner else []
        return out

    glow = flows.Glow((8, 8, 1), 17, num_scales=2, steps_per_scale=2, filters=4)
    step = ["ActNorm", "InvertibleConv1x1", "AffineCoupling"]
    assert kinds(glow) == [
        ["Logit", "Squeeze", *step, *step, "FactorOut", "Unsqueeze"],
        ["Squeeze", *step, *step, "Unsqueeze"],
    ]
    convs = [b for b in glow.bijectors if isinstance(b, tfflows.bijectors.InvertibleConv1x1)]
    assert all(c.lu_decomposed for c in convs) and glow.latent_shape == (8, 8, 1)
    plain = flows.Glow((8, 8, 1), 17, steps_per_scale=2, actnorm=False, mixing="alternate")
    couplings = [b for b in plain.bijectors if isinstance(b, tfflows.bijectors.AffineCoupling)]
    assert kinds(plain)[0] == [
        "Logit",
        "Squeeze",
        "AffineCoupling",
        "AffineCoupling",
        "FactorOut",
        "Unsqueeze",
    ]
    assert [c.mask.parity for c in couplings] == [0, 1]
    with pytest.raises(ValueError, match="divisible by 8; got an image of 12x12"):
        flows.Glow((12, 12, 1), 256, num_scales=3)
    with pytest.raises(ValueError, match="mixing must be one of"):
        flows.Glow((8, 8, 1), 17, mixing="shuffle")
