"""RealNVP (Dinh, Sohl-Dickstein and Bengio, 2016): affine couplings, multi-scale or flat."""

import math

import keras

from tfflows import bijectors, masks, nets
from zoo.models.checks import whole_number, whole_numbers
from zoo.models.flows.image_flow import ImageFlow, coupling_context, flatten, logit_alpha

ARCHITECTURES = ("multiscale", "flat")
CHECKERBOARDS = {"masked": masks.checkerboard, "packed": masks.packed_checkerboard}


@keras.saving.register_keras_serializable(package="zoo")
class RealNVP(ImageFlow):
    """RealNVP (Dinh, Sohl-Dickstein and Bengio, 2016) for images.

    Data go through ``Logit(alpha)`` first, then one of two architectures:

    * ``"multiscale"`` (the paper's image model): per scale, 3 affine couplings with alternating
      checkerboard masks, a squeeze, 3 couplings with alternating channel masks, then half the
      channels are factored out to the latent and the next scale works on the rest; the last
      scale has 4 checkerboard couplings. Conditioners are ResNets (``filters`` wide,
      ``num_blocks`` residual blocks); a per-channel `BatchNorm` follows each coupling. Needs
      ``H`` and ``W`` divisible by ``2 ** (num_scales - 1)``. ``checkerboard="masked"`` (the
      paper's): the conditioner sees the masked image at full size; ``"packed"``: each row's
      conditioning pixels side by side (`tfflows.masks.packed_checkerboard`, normflows'
      layout), half the conditioner's work; needs ``W`` divisible by ``2 ** num_scales``.
    * ``"flat"``: the image is flattened and ``num_couplings`` affine couplings on alternating
      odd/even units, with MLP conditioners (``hidden_units``) and a `BatchNorm` after each
      coupling but the last; the structure used for small (e.g. 16x16) digits.

    Args:
      image_shape: ``(H, W, C)``.
      num_levels: levels of the discrete data.
      architecture: ``"multiscale"`` or ``"flat"``.
      num_scales, filters, num_blocks: multi-scale architecture size.
      checkerboard: ``"masked"`` or ``"packed"`` (multi-scale architecture).
      num_couplings, hidden_units: flat architecture size.
      alpha: the logit's margin (0.05 in the paper's CIFAR-10 model, 1e-6 for MNIST).
      batch_norm: put `BatchNorm` bijectors after the couplings.
      num_classes: ``C`` of a class-conditional RealNVP (`ImageFlow`): each conditioner also
        sees the one-hot class, and the base is class-conditional. 0: unconditional.
      conditioning: ``"full"`` or ``"prior"`` (the class in the base only; `ImageFlow`).
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        # Multi-scale: 1.98x; flat (MLPs): 1.07x (bench/train_step.py).
        return options.get("architecture", "multiscale") == "multiscale"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        architecture="multiscale",
        num_scales=2,
        filters=32,
        num_blocks=2,
        num_couplings=8,
        hidden_units=(256, 256),
        alpha=0.05,
        batch_norm=True,
        num_classes=0,
        conditioning="full",
        checkerboard="masked",
        **kwargs,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}.")
        if checkerboard not in CHECKERBOARDS:
            raise ValueError(
                f"checkerboard must be one of {tuple(CHECKERBOARDS)}, got {checkerboard!r}."
            )
        self.architecture = architecture
        self.checkerboard = checkerboard
        self.num_scales = whole_number("num_scales", num_scales)
        self.filters = whole_number("filters", filters)
        self.num_blocks = whole_number("num_blocks", num_blocks, minimum=0)
        self.num_couplings = whole_number("num_couplings", num_couplings)
        self.hidden_units = list(whole_numbers("hidden_units", hidden_units))
        self.alpha = logit_alpha(alpha)
        self.batch_norm = bool(batch_norm)
        self.num_classes = whole_number("num_classes", num_classes, minimum=0)
        self.coupling_context = coupling_context(self.num_classes, conditioning)
        # Flat batch norm normalizes each unit over the batch alone.
        flat_norm = architecture == "flat" and self.batch_norm and self.num_couplings > 1
        self.min_batch_size = 2 if flat_norm else 1
        self._net_dtype = kwargs.get("dtype")
        image_shape = tuple(int(n) for n in image_shape)
        layers = [bijectors.Logit(self.alpha, validate_args=kwargs.get("validate_args", True))]
        if architecture == "flat":
            layers += [flatten(image_shape), *self._flat(math.prod(image_shape))]
        else:
            factor = 2 ** (self.num_scales - 1)
            h, w, _ = image_shape
            if self.num_scales < 1 or h % factor or w % factor:
                raise ValueError(
                    f"A {self.num_scales}-scale RealNVP needs height and width divisible by "
                    f"{factor}; got an image of {h}x{w}. Resize the data or use fewer scales."
                )
            if checkerboard == "packed" and (w // factor) % 2:
                raise ValueError(
                    f"A {self.num_scales}-scale RealNVP with packed checkerboards needs a width "
                    f"divisible by {2 * factor}; got {w}. Use checkerboard='masked' or fewer "
                    "scales."
                )
            layers += self._scale(image_shape, 0)
        super().__init__(
            layers,
            image_shape,
            num_levels,
            num_classes=self.num_classes,
            conditioning=conditioning,
            **kwargs,
        )

    def _coupling(self, mask):
        if mask.event_ndims == 1:
            net = nets.MLP(self.hidden_units, 2 * mask.transformed_shape[-1], dtype=self._net_dtype)
        else:
            channels = 2 * mask.transformed_shape[-1]
            net = nets.ResNet(self.filters, self.num_blocks, channels, dtype=self._net_dtype)
        return bijectors.AffineCoupling(mask, net, context_size=self.coupling_context)

    def _flat(self, dims):
        layers = []
        for i in range(self.num_couplings):
            layers.append(self._coupling(masks.alternating(dims, parity=i % 2)))
            if self.batch_norm and i < self.num_couplings - 1:
                layers.append(bijectors.BatchNorm([dims]))
        return layers

    def _couplings(self, make_mask, shape, count):
        layers = []
        for i in range(count):
            layers.append(self._coupling(make_mask(shape, parity=i % 2)))
            if self.batch_norm:
                layers.append(bijectors.BatchNorm(shape))
        return layers

    def _scale(self, shape, level):
        """The bijectors of scale ``level`` on events ``shape``; they map ``shape`` to itself."""
        checkerboard = CHECKERBOARDS[self.checkerboard]
        if level == self.num_scales - 1:
            return self._couplings(checkerboard, shape, 4)
        h, w, c = shape
        squeezed = (h // 2, w // 2, 4 * c)
        kept = (h // 2, w // 2, 4 * c - 2 * c)
        return [
            *self._couplings(checkerboard, shape, 3),
            bijectors.Squeeze(),
            *self._couplings(masks.channel, squeezed, 3),
            bijectors.FactorOut(self._scale(kept, level + 1), squeezed),
            bijectors.Unsqueeze(),
        ]

    def get_config(self):
        return {
            **self._image_config(),
            "architecture": self.architecture,
            "checkerboard": self.checkerboard,
            "num_scales": self.num_scales,
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "num_couplings": self.num_couplings,
            "hidden_units": self.hidden_units,
            "alpha": self.alpha,
            "batch_norm": self.batch_norm,
        }
