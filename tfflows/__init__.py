"""tfflows: normalizing-flow bijectors for TensorFlow Probability, with Keras 3 state.

Direction convention, everywhere in this package (as in TFP): a bijector's **forward** maps the
latent ``z`` towards the data ``x`` (sampling); its **inverse** maps data towards the latent
(density evaluation). A flow is ``tfb.Chain([b_data_side, ..., b_latent_side])`` over a base
distribution, and

    log p(x) = log p_base(chain.inverse(x)) + chain.inverse_log_det_jacobian(x).

Preprocessing bijectors are named for what they do to data on its way to the latent space, i.e.
for their inverse: `bijectors.Logit` takes pixels in [0, 1] to logits, `bijectors.Squeeze` does
space-to-depth, `bijectors.BatchNorm` normalizes. So they sit in a chain as they are, no
``tfb.Invert`` needed.

Weights live in Keras layers (``bijector.keras_layers``): conditioner networks from `nets`, and
`bijectors.BijectorWeights` for a bijector's own variables. They are created when the bijector
is, since masks and event shapes fix every shape. `Flow` is a `keras.Model` that tracks them,
trains with `fit` and saves to `.keras`. Log-dets and log-probs are computed in float32 even when
the conditioners run in float16 / bfloat16 under a mixed-precision policy.

The gradient step of `Flow.train_step` is public for any custom ``train_step``
(`gradient_step`): `minimize` (replica- and loss-scaled, skipped when the loss or a gradient is
not finite), `record_step` and `skipped_steps_metric` (count skipped steps, update metrics only
for applied ones), `weighted_mean` (per-example figures), `all_finite` / `all_replicas`,
`build_optimizer` (before the first trace); and `checks` holds the run-time input checks
(`checks.in_range`, `sampling_arguments`).
"""

from tfflows import bijectors, checks, masks, nets
from tfflows.checks import sampling_arguments
from tfflows.dequantization import VariationalDequantizer, bits_per_dim, uniform_dequantize
from tfflows.flow import Flow
from tfflows.gradient_step import (
    all_finite,
    all_replicas,
    build_optimizer,
    minimize,
    record_step,
    skipped_steps_metric,
    weighted_mean,
)

__version__ = "0.1.0"

__all__ = [
    "Flow",
    "VariationalDequantizer",
    "all_finite",
    "all_replicas",
    "bijectors",
    "bits_per_dim",
    "build_optimizer",
    "checks",
    "masks",
    "minimize",
    "nets",
    "record_step",
    "sampling_arguments",
    "skipped_steps_metric",
    "uniform_dequantize",
    "weighted_mean",
]
