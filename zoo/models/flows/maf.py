"""MAF (Papamakarios, Pavlakou and Murray, 2017) and IAF (Kingma et al., 2016): masked
autoregressive transforms on vectors."""

import math

import keras

from tfflows import bijectors, nets
from zoo.models.checks import positive_number, whole_number, whole_numbers
from zoo.models.flows.image_flow import ImageFlow, coupling_context, flatten, logit_alpha

TRANSFORMS = ("affine", "spline")
FAST = ("inverse", "forward")


@keras.saving.register_keras_serializable(package="zoo")
class MAF(ImageFlow):
    """Masked Autoregressive Flow (Papamakarios, Pavlakou and Murray, "Masked Autoregressive
    Flow for Density Estimation", NeurIPS 2017) on the flattened image, a vector of ``D``
    values: the flow for vector data, which sees no image structure.

    Data go through ``Logit(alpha)`` and are flattened; then ``num_layers`` masked
    autoregressive transforms (`tfflows.bijectors.MaskedAutoregressive`, MAF direction), each
    with a MADE conditioner (`tfflows.nets.MADE`, ``hidden_units``) whose order alternates
    natural / reversed, so that every unit is conditioned on every other one in some layer; a
    per-unit `BatchNorm` between them, as in the paper. With ``transform="affine"``

    ```none
    z_i = (x_i - m_i(x_<i)) exp(-s_i(x_<i)),      log|det dz/dx| = - sum_i s_i(x_<i)
    ```

    in one MADE pass per layer; ``transform="spline"`` makes each ``x_i -> z_i`` a
    rational-quadratic spline (an autoregressive neural spline flow, Durkan et al. 2019).
    Density evaluation (training) takes one pass per layer; sampling inverts each layer unit by
    unit, ``D`` passes per layer: slow for images, which is the MAF trade-off.

    ``fast="forward"`` is the IAF (Kingma, Salimans, Jozefowicz, Chen, Sutskever and Welling,
    "Improved Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016): the same
    transforms run the other way, ``x_i = z_i exp(s_i(z_<i)) + m_i(z_<i)``, so sampling takes
    one MADE pass per layer and scoring an image ``D``. Use the MAF to score images (and to
    train by maximum likelihood, which scores every batch); use the IAF where sampling is the
    hot path and scoring is rare (``bench/inference.py`` measures both).
    ``num_classes > 0`` makes it class-conditional (`ImageFlow`): each MADE also takes the
    one-hot class, which feeds every hidden unit.

    Args:
      image_shape: ``(H, W, C)``.
      num_levels: levels of the discrete data.
      num_layers: autoregressive transforms.
      hidden_units: each MADE's hidden widths.
      transform: ``"affine"`` or ``"spline"``.
      fast: ``"inverse"`` (MAF: one pass to score) or ``"forward"`` (IAF: one pass to sample).
      bins, bound: the spline transforms' ``K`` and ``B``.
      batch_norm: put `BatchNorm` bijectors between the transforms.
      alpha: the logit's margin.
      num_classes: ``C`` of a class-conditional MAF (0: unconditional).
      conditioning: ``"full"`` or ``"prior"`` (the class in the base only; `ImageFlow`).
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        num_layers=5,
        hidden_units=(1024,),
        transform="affine",
        fast="inverse",
        bins=8,
        bound=3.0,
        batch_norm=True,
        alpha=0.05,
        num_classes=0,
        conditioning="full",
        **kwargs,
    ):
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}.")
        if fast not in FAST:
            raise ValueError(f"fast must be one of {FAST} (MAF, IAF), got {fast!r}.")
        self.fast = fast
        self.num_layers = whole_number("num_layers", num_layers)
        self.hidden_units = list(whole_numbers("hidden_units", hidden_units))
        if not self.hidden_units:
            raise ValueError("hidden_units must name at least one hidden layer, e.g. [1024].")
        self.transform = transform
        self.bins = whole_number("bins", bins, minimum=2)
        self.bound = positive_number("bound", bound)
        self.batch_norm = bool(batch_norm)
        self.alpha = logit_alpha(alpha)
        self.num_classes = whole_number("num_classes", num_classes, minimum=0)
        self.coupling_context = coupling_context(self.num_classes, conditioning)
        # Per-unit batch norm normalizes each unit over the batch alone.
        self.min_batch_size = 2 if self.batch_norm and self.num_layers > 1 else 1
        image_shape = tuple(int(n) for n in image_shape)
        dims = math.prod(image_shape)
        params = 2 if transform == "affine" else 3 * self.bins - 1
        layers = [
            bijectors.Logit(self.alpha, validate_args=kwargs.get("validate_args", True)),
            flatten(image_shape),
        ]
        for i in range(self.num_layers):
            made = nets.MADE(
                dims,
                params,
                self.hidden_units,
                context_size=self.coupling_context,
                order="natural" if i % 2 == 0 else "reversed",
                dtype=kwargs.get("dtype"),
            )
            layers.append(
                bijectors.MaskedAutoregressive(
                    made, transform, bins=self.bins, bound=self.bound, fast=fast
                )
            )
            if self.batch_norm and i < self.num_layers - 1:
                layers.append(bijectors.BatchNorm([dims]))
        super().__init__(
            layers,
            image_shape,
            num_levels,
            num_classes=self.num_classes,
            conditioning=conditioning,
            **kwargs,
        )

    def get_config(self):
        return {
            **self._image_config(),
            "num_layers": self.num_layers,
            "hidden_units": self.hidden_units,
            "transform": self.transform,
            "fast": self.fast,
            "bins": self.bins,
            "bound": self.bound,
            "batch_norm": self.batch_norm,
            "alpha": self.alpha,
        }
