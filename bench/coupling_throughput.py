"""Throughput of the one-pass bijector methods against separate calls and tfb.RealNVP.

    python bench/coupling_throughput.py [--dim 784] [--hidden 1000 1000] [--batch 256]

Three groups, each timed interleaved (round-robin repeats, so that machine noise hits every
variant alike) as traced tf.functions, printing examples/s (median over repeats) and the ratio
to the group's first row:

* density, one AffineCoupling (MLP conditioner), the inverse and its log-det at a batch x:
  tfb.RealNVP on the same conditioner weights (TFP's public API, two calls); ours, two calls;
  ours, ``inverse_and_log_det`` (one conditioner pass, as `tfflows.Flow.log_prob` runs it).
* scored samples, the same coupling, the forward pass and its log-det at a batch z: the same
  three, with ``forward_and_log_det``.
* each kind of bijector on the same vectors, density direction (data -> latent with its
  log-det, as training runs it) and sampling direction: additive, affine and rational-quadratic
  spline couplings (MLP conditioner), MAF and IAF (a MADE of the same widths), affine and
  spline; the spline coupling and the affine MAF also as TFP builds them on the same weights
  (``tfb.RealNVP`` with a ``tfb.RationalQuadraticSpline`` per call,
  ``tfb.MaskedAutoregressiveFlow``). MAF samples and IAF scores in D MADE passes: those rows
  are timed on --sequential-dim units, one batch per repeat.
* scored samples from a whole multi-scale RealNVP (`zoo.RealNVP` on 28x28x1, two scales, batch
  norm, FactorOut): ``sample`` then ``log_prob`` of the draws (how samples were scored before the
  forward one-pass path) against ``sample_and_log_prob``.

Each group first checks that its variants agree.
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from _memory import peak_rss_mib

from tfflows import bijectors, masks, nets
from tfflows.bijectors import _spline
from zoo.models import flows

tfb = tfp.bijectors


def coupling_groups(args):
    mask = masks.half(args.dim)
    coupling = bijectors.AffineCoupling(mask, nets.MLP(args.hidden, 2 * mask.transformed_shape[-1]))
    rng = np.random.default_rng(0)
    for w in coupling.conditioner.weights:
        w.assign(rng.normal(scale=0.05, size=w.shape).astype(np.float32))
    real_nvp = tfb.RealNVP(
        num_masked=mask.conditioning_shape[-1],
        shift_and_log_scale_fn=lambda x_a, _: coupling.shift_and_log_scale(x_a),
    )
    x = tf.random.normal((args.batch, args.dim), seed=2)

    def two_calls(bijector, direction):
        transform = getattr(bijector, direction)
        log_det = getattr(bijector, f"{direction}_log_det_jacobian")
        return tf.function(lambda t: (transform(t), log_det(t, 1)))

    return {
        "density: inverse and log-det": (
            {
                "tfb.RealNVP, 2 calls": two_calls(real_nvp, "inverse"),
                "AffineCoupling, 2 calls": two_calls(coupling, "inverse"),
                "AffineCoupling, inverse_and_log_det": tf.function(
                    lambda t: coupling.inverse_and_log_det(t, 1)
                ),
            },
            x,
        ),
        "scored samples: forward and log-det": (
            {
                "tfb.RealNVP, 2 calls": two_calls(real_nvp, "forward"),
                "AffineCoupling, 2 calls": two_calls(coupling, "forward"),
                "AffineCoupling, forward_and_log_det": tf.function(
                    lambda t: coupling.forward_and_log_det(t, 1)
                ),
            },
            x,
        ),
    }


def _randomize(layers, scale, seed):
    rng = np.random.default_rng(seed)
    for layer in layers:
        for w in layer.trainable_weights:
            w.assign(rng.normal(scale=scale, size=w.shape).astype(np.float32))


def _kinds(dim, hidden, bins):
    """Each kind of bijector on vectors [dim], random weights, and TFP's equivalents."""
    mask = masks.half(dim)
    units = mask.transformed_shape[-1]
    spline_params = _spline.num_parameters(bins)
    made_args = {"hidden_units": hidden, "activation": "relu"}
    made = {
        "affine": lambda: nets.MADE(dim, 2, **made_args),
        "spline": lambda: nets.MADE(dim, spline_params, **made_args),
    }
    kinds = {
        "AdditiveCoupling": bijectors.AdditiveCoupling(mask, nets.MLP(hidden, units)),
        "AffineCoupling": bijectors.AffineCoupling(mask, nets.MLP(hidden, 2 * units)),
        f"RationalQuadraticCoupling ({bins} bins)": bijectors.RationalQuadraticCoupling(
            mask, nets.MLP(hidden, spline_params * units), bins=bins
        ),
        "MAF affine": bijectors.MaskedAutoregressive(made["affine"](), "affine", "inverse"),
        f"MAF spline ({bins} bins)": bijectors.MaskedAutoregressive(
            made["spline"](), "spline", "inverse", bins=bins
        ),
        "IAF affine": bijectors.MaskedAutoregressive(made["affine"](), "affine", "forward"),
    }
    for i, b in enumerate(kinds.values()):
        _randomize(b.keras_layers, 0.05, i)
    spline = kinds[f"RationalQuadraticCoupling ({bins} bins)"]
    maf = kinds["MAF affine"]

    def tfp_spline(x_a, output_units):
        del output_units
        theta = spline.spline_parameters(x_a)
        _, widths = _spline._knots(theta[..., :bins], spline.bound)
        _, heights = _spline._knots(theta[..., bins : 2 * bins], spline.bound)
        slopes = _spline._slopes(theta[..., 2 * bins :])[..., 1:-1]
        return tfb.RationalQuadraticSpline(widths, heights, slopes, range_min=-spline.bound)

    def tfp_maf(x):
        theta = maf.parameters_of(x)
        return theta[..., 0], maf._log_scale_bound(theta[..., 1])

    tfp_kinds = {
        "tfb.RealNVP + tfb.RationalQuadraticSpline": tfb.RealNVP(
            num_masked=mask.conditioning_shape[-1], bijector_fn=tfp_spline
        ),
        "tfb.MaskedAutoregressiveFlow (affine)": tfb.MaskedAutoregressiveFlow(
            shift_and_log_scale_fn=tfp_maf
        ),
    }
    return kinds, tfp_kinds


def kind_groups(args):
    """Density and sampling, each kind of bijector, one pass or D."""
    kinds, tfp_kinds = _kinds(args.dim, args.hidden, args.bins)
    x = tf.random.normal((args.batch, args.dim), seed=4)

    def one(b, direction):
        return tf.function(lambda t: getattr(b, f"{direction}_and_log_det")(t, 1))

    def tfp_one(b, direction):
        transform = getattr(b, direction)
        log_det = getattr(b, f"{direction}_log_det_jacobian")
        return tf.function(lambda t: (transform(t), log_det(t, 1)))

    density = {n: one(b, "inverse") for n, b in kinds.items()}
    sampling = {n: one(b, "forward") for n, b in kinds.items() if not n.startswith("MAF")}
    for name, b in tfp_kinds.items():
        density[name] = tfp_one(b, "inverse")
        if "RealNVP" in name:
            sampling[name] = tfp_one(b, "forward")
    # TFP's builds compute what ours do.
    spline = f"RationalQuadraticCoupling ({args.bins} bins)"
    for ours, theirs in (
        (spline, "tfb.RealNVP + tfb.RationalQuadraticSpline"),
        ("MAF affine", "tfb.MaskedAutoregressiveFlow (affine)"),
    ):
        for got, want in zip(density[ours](x), density[theirs](x), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3, err_msg=theirs)
    small, _ = _kinds(args.sequential_dim, args.hidden, args.bins)
    z = tf.random.normal((args.batch, args.sequential_dim), seed=5)
    d = args.sequential_dim
    sequential = {
        "MAF affine, density (one pass)": one(small["MAF affine"], "inverse"),
        f"MAF affine, sampling ({d} passes)": one(small["MAF affine"], "forward"),
        f"MAF spline, sampling ({d} passes)": one(
            small[f"MAF spline ({args.bins} bins)"], "forward"
        ),
        "IAF affine, sampling (one pass)": one(small["IAF affine"], "forward"),
        f"IAF affine, density ({d} passes)": one(small["IAF affine"], "inverse"),
    }
    return {
        "each bijector, density: inverse and log-det": (density, x, args.steps),
        "each bijector, sampling: forward and log-det": (sampling, x, args.steps),
        f"one pass against D passes, D = {d}, 1 batch per repeat": (sequential, z, 1),
    }


def flow_group(args):
    # Unclipped draws can leave [0, 1] by a little; score them with the range checks off.
    flow = flows.RealNVP(
        (28, 28, 1), 256, num_scales=2, filters=32, num_blocks=2, validate_args=False
    )
    rng = np.random.default_rng(1)
    for w in flow.trainable_weights:
        w.assign(rng.normal(scale=0.02, size=w.shape).astype(np.float32))
    z = tf.random.normal((args.flow_batch, *flow.latent_shape), seed=3)

    @tf.function
    def decode_then_log_prob(z):
        x = flow.decode(z)
        return x, flow.log_prob(x)

    variants = {
        "decode, then log_prob (inverse)": decode_then_log_prob,
        "decode_and_log_prob (one pass)": tf.function(flow.decode_and_log_prob),
    }
    return {f"scored samples: multi-scale RealNVP 28x28, batch {args.flow_batch}": (variants, z)}


def time_group(variants, data, steps, args, agree=True):
    """Examples/s of each variant (median over repeats); ``agree``: first checks that the
    variants compute the same."""
    outputs = {name: fn(data) for name, fn in variants.items()}  # trace once
    first = next(iter(outputs.values()))
    for name, out in outputs.items() if agree else ():
        for got, want in zip(out, first, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2, err_msg=name)
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(steps):
                out = fn(data)
            out[-1].numpy()
            times[name].append(time.perf_counter() - start)
    batch = int(data.shape[0])
    return {name: batch * steps / np.median(ts) for name, ts in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=784)
    parser.add_argument("--hidden", type=int, nargs="+", default=[1000, 1000])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--flow-batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="batches per timed repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--bins", type=int, default=8, help="the splines'")
    parser.add_argument("--sequential-dim", type=int, default=64, help="D of the D-pass rows")
    args = parser.parse_args(argv)

    print(
        "command: python bench/coupling_throughput.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TF {tf.__version__}, TFP {tfp.__version__}, devices "
        f"{[d.device_type for d in tf.config.list_logical_devices()]}"
    )
    print(f"coupling: event dim {args.dim}, conditioner MLP {args.hidden}, batch {args.batch}")
    groups = {
        **{t: (v, d, args.steps, True) for t, (v, d) in coupling_groups(args).items()},
        **{t: (v, d, args.steps, True) for t, (v, d) in flow_group(args).items()},
        **{t: (v, d, steps, False) for t, (v, d, steps) in kind_groups(args).items()},
    }
    for title, (variants, data, steps, agree) in groups.items():
        rates = time_group(variants, data, steps, args, agree)
        base = next(iter(rates.values()))
        print(f"\n{title}")
        for name, rate in rates.items():
            print(f"  {name:46s} {rate:10.0f} examples/s   ratio {rate / base:.2f}")
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
