"""Glow (Kingma and Dhariwal, 2018): ActNorm, invertible 1x1 convolutions, affine couplings."""

import keras

from tfflows import bijectors, masks, nets
from zoo.models.checks import positive_number, whole_number
from zoo.models.flows.image_flow import ImageFlow, coupling_context, logit_alpha

MIXINGS = ("conv1x1", "alternate")
COUPLINGS = ("affine", "spline")


@keras.saving.register_keras_serializable(package="zoo")
class Glow(ImageFlow):
    """Glow (Kingma and Dhariwal, 2018) for images: multi-scale, each step ActNorm, invertible
    1x1 convolution, affine coupling.

    Data go through ``Logit(alpha)`` first. Each of the ``num_scales`` scales squeezes (2x2
    space-to-depth), runs ``steps_per_scale`` steps on the squeezed ``[H/2, W/2, 4C]``, then
    (but the last) factors half of the channels out to the latent; the next scale works on the
    rest. A step is

    ```none
    ActNorm (per-channel affine, initialized from the first batch so that its outputs have
      mean 0 and variance 1)
    -> InvertibleConv1x1 (a learned channel mixing; LU-decomposed by default)
    -> AffineCoupling on a channel split, ResNet conditioner (``filters`` wide,
      ``num_blocks`` residual blocks, zero-initialized output)
    ```

    Needs ``H`` and ``W`` divisible by ``2 ** num_scales``. For ablations: ``actnorm=False``
    drops the ActNorms; ``mixing="alternate"`` replaces the 1x1 convolutions by RealNVP's
    alternating channel masks (no learned mixing).

    ``coupling="spline"`` makes it a multi-scale neural spline flow (Durkan, Bekasov, Murray and
    Papamakarios, "Neural Spline Flows", NeurIPS 2019): each affine coupling becomes a
    `tfflows.bijectors.RationalQuadraticCoupling` (``bins`` bins on ``[-bound, bound]``,
    identity outside), its ResNet giving ``3 bins - 1`` parameters per transformed channel.
    ``num_classes > 0`` makes it class-conditional (`ImageFlow`): each coupling's ResNet also
    sees the one-hot class, and the base is the class-conditional prior of the Glow paper.

    Args:
      image_shape: ``(H, W, C)``.
      num_levels: levels of the discrete data.
      num_scales: squeeze-steps-split levels (2 for 28x28: 28 -> 14 -> 7).
      steps_per_scale: flow steps per scale (``K``).
      filters, num_blocks: each coupling's ResNet.
      lu_decomposed: parametrize the 1x1 convolutions by their LU decomposition.
      actnorm: put an ActNorm at the start of each step.
      mixing: ``"conv1x1"`` or ``"alternate"``.
      alpha: the logit's margin.
      coupling: ``"affine"`` or ``"spline"``.
      bins, bound: the spline couplings' ``K`` and ``B``.
      num_classes: ``C`` of a class-conditional Glow (0: unconditional).
      conditioning: ``"full"`` or ``"prior"`` (the class in the base only; `ImageFlow`).
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        # Convolutional conditioners, as the multi-scale RealNVP's. The spline couplings' float32
        # arithmetic leaves bench/train_step.py --model nsf 1.18x on avx512_bf16 (AMD EPYC),
        # under the 1.25x bar; 1.34x on AMX tiles (Intel Xeon), but 200 steps from one seed
        # held out 1.9192 bits/dim against float32's 1.8258.
        return options.get("coupling", "affine") != "spline"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        num_scales=2,
        steps_per_scale=4,
        filters=32,
        num_blocks=1,
        lu_decomposed=True,
        actnorm=True,
        mixing="conv1x1",
        alpha=0.05,
        coupling="affine",
        bins=8,
        bound=3.0,
        num_classes=0,
        conditioning="full",
        **kwargs,
    ):
        if mixing not in MIXINGS:
            raise ValueError(f"mixing must be one of {MIXINGS}, got {mixing!r}.")
        if coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}.")
        self.coupling = coupling
        self.bins = whole_number("bins", bins, minimum=2)
        self.bound = positive_number("bound", bound)
        self.num_classes = whole_number("num_classes", num_classes, minimum=0)
        self.coupling_context = coupling_context(self.num_classes, conditioning)
        self.num_scales = whole_number("num_scales", num_scales)
        self.steps_per_scale = whole_number("steps_per_scale", steps_per_scale)
        self.filters = whole_number("filters", filters)
        self.num_blocks = whole_number("num_blocks", num_blocks, minimum=0)
        self.lu_decomposed = bool(lu_decomposed)
        self.actnorm = bool(actnorm)
        self.mixing = mixing
        self.alpha = logit_alpha(alpha)
        self._net_dtype = kwargs.get("dtype")
        image_shape = tuple(int(n) for n in image_shape)
        factor = 2**self.num_scales
        h, w, _ = image_shape
        if h % factor or w % factor:
            raise ValueError(
                f"A {self.num_scales}-scale Glow needs height and width divisible by {factor}; "
                f"got an image of {h}x{w}. Resize the data or use fewer scales."
            )
        layers = [bijectors.Logit(self.alpha, validate_args=kwargs.get("validate_args", True))]
        layers += self._scale(image_shape, 0)
        super().__init__(
            layers,
            image_shape,
            num_levels,
            num_classes=self.num_classes,
            conditioning=conditioning,
            **kwargs,
        )

    def _step(self, shape, index):
        layers = [bijectors.ActNorm(shape)] if self.actnorm else []
        parity = 0
        if self.mixing == "conv1x1":
            layers.append(bijectors.InvertibleConv1x1(shape, lu_decomposed=self.lu_decomposed))
        else:
            parity = index % 2
        mask = masks.channel(shape, parity=parity)
        layers.append(self._coupling(mask))
        return layers

    def _coupling(self, mask):
        units = mask.transformed_shape[-1]
        context = self.coupling_context
        if self.coupling == "affine":
            net = nets.ResNet(self.filters, self.num_blocks, 2 * units, dtype=self._net_dtype)
            return bijectors.AffineCoupling(mask, net, context_size=context)
        channels = (3 * self.bins - 1) * units
        net = nets.ResNet(self.filters, self.num_blocks, channels, dtype=self._net_dtype)
        return bijectors.RationalQuadraticCoupling(mask, net, self.bins, self.bound, context)

    def _scale(self, shape, level):
        """Scale ``level`` on events ``shape``: squeeze, steps, split; maps ``shape`` to itself."""
        h, w, c = shape
        squeezed = (h // 2, w // 2, 4 * c)
        steps = [b for i in range(self.steps_per_scale) for b in self._step(squeezed, i)]
        if level < self.num_scales - 1:
            kept = (h // 2, w // 2, 2 * c)
            steps.append(bijectors.FactorOut(self._scale(kept, level + 1), squeezed))
        return [bijectors.Squeeze(), *steps, bijectors.Unsqueeze()]

    def get_config(self):
        return {
            **self._image_config(),
            "num_scales": self.num_scales,
            "steps_per_scale": self.steps_per_scale,
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "lu_decomposed": self.lu_decomposed,
            "actnorm": self.actnorm,
            "mixing": self.mixing,
            "alpha": self.alpha,
            "coupling": self.coupling,
            "bins": self.bins,
            "bound": self.bound,
        }
