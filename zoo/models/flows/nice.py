"""NICE (Dinh, Krueger and Bengio, 2014): additive couplings on flattened images."""

import math

import keras

from tfflows import bijectors, masks, nets
from zoo.models.checks import whole_number, whole_numbers
from zoo.models.flows.image_flow import ImageFlow, coupling_context, flatten


@keras.saving.register_keras_serializable(package="zoo")
class NICE(ImageFlow):
    """NICE (Dinh, Krueger and Bengio, 2014) on flattened images.

    Defaults are the paper's MNIST model: 4 additive couplings alternating odd and even units,
    each with a ReLU MLP of 5 hidden layers of 1000 units, a diagonal scaling on top, and a
    standard logistic prior. Images enter as they are (dequantized, in ``[0, 1)``), as in the
    paper.

    Args:
      image_shape: ``(H, W, C)``.
      num_levels: levels of the discrete data (256 for MNIST).
      num_couplings: number of additive coupling layers.
      hidden_units: widths of each coupling's MLP.
      prior: ``"logistic"`` (the paper) or ``"normal"``.
      data_init: start the scaling at the data's scale (`tfflows.bijectors.Scaling`'s
        ``data_init``: the first training batch sets it so that the latents have unit
        variance); False is the paper's identity start, with which NICE spends its first epochs
        learning the scale. Configs saved without this option load with False.
      num_classes: ``C`` of a class-conditional NICE (`ImageFlow`): each coupling's MLP also
        sees the one-hot class, and the prior is class-conditional. 0: unconditional.
      conditioning: ``"full"`` or ``"prior"`` (the class in the base only; `ImageFlow`).
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        return True  # 1.40x (bench/train_step.py)

    @classmethod
    def from_config(cls, config):
        return super().from_config({"data_init": False, **config})

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        num_couplings=4,
        hidden_units=(1000,) * 5,
        prior="logistic",
        data_init=True,
        num_classes=0,
        conditioning="full",
        **kwargs,
    ):
        dims = math.prod(image_shape)
        self.num_classes = whole_number("num_classes", num_classes, minimum=0)
        self.coupling_context = coupling_context(self.num_classes, conditioning)
        self.data_init = bool(data_init)
        self.num_couplings = whole_number("num_couplings", num_couplings)
        self.hidden_units = list(whole_numbers("hidden_units", hidden_units))
        layers = [flatten(image_shape)]
        for i in range(self.num_couplings):
            mask = masks.alternating(dims, parity=i % 2)
            units = mask.transformed_shape[-1]
            net = nets.MLP(self.hidden_units, units, dtype=kwargs.get("dtype"))
            layers.append(bijectors.AdditiveCoupling(mask, net, self.coupling_context))
        layers.append(bijectors.Scaling([dims], data_init=self.data_init))
        super().__init__(
            layers,
            image_shape,
            num_levels,
            base_distribution=prior,
            num_classes=self.num_classes,
            conditioning=conditioning,
            **kwargs,
        )

    def get_config(self):
        return {
            **self._image_config(),
            "num_couplings": self.num_couplings,
            "hidden_units": self.hidden_units,
            "prior": self.base_distribution,
            "data_init": self.data_init,
        }
