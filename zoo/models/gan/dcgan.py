"""DCGAN (Radford, Metz and Chintala, 2015): the `GAN` with convolutional players sized from the
image shape (`zoo.models.nets.dcgan_generator`, `dcgan_discriminator`)."""

import keras

from zoo.models import nets
from zoo.models.checks import whole_number
from zoo.models.gan.gan import GAN


@keras.saving.register_keras_serializable(package="zoo")
class DCGAN(GAN):
    """DCGAN (Radford, Metz and Chintala, 2015) sized from the image shape.

    Generator: dense to ``H / 2^n x W / 2^n``, then ``n`` stride-2 transposed convolutions with
    batch norm and ReLU, a 3x3 convolution and tanh; discriminator: ``n`` stride-2 convolutions
    with LeakyReLU and dropout, one logit; ``n`` from `zoo.models.nets.upsampling_stages` (8x8
    and 28x28: 2, 32x32: 3). Trains on images scaled to ``[-1, 1]``.

    Args:
      image_shape: ``(H, W, C)``.
      latent_dim: size of ``z``.
      filters: width of the discriminator's first and the generator's last stage.
      dropout: the discriminator's dropout rate.
      pack, loss, label_smoothing, d_steps, gradient_penalty, judge: see `GAN` (with
        ``loss="wasserstein"``, WGAN-GP, the critic computes in float32 whatever the policy).
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        # 1.34x (bench/train_step.py). WGAN-GP's float32 critic takes 5 of its 6 passes a step:
        # float32 until bfloat16 is measured to pay for it.
        return options.get("loss") != "wasserstein"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=64,
        filters=64,
        dropout=0.3,
        pack=1,
        **kwargs,
    ):
        image_shape = tuple(int(n) for n in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C), got {list(image_shape)}.")
        dtype = kwargs.get("dtype")
        # WGAN-GP's critic and its penalty's second-order gradients stay in float32.
        critic_dtype = "float32" if kwargs.get("loss") == "wasserstein" else dtype
        self.filters = whole_number("filters", filters)
        self.dropout = float(dropout)
        super().__init__(
            generator=nets.dcgan_generator(
                image_shape, whole_number("latent_dim", latent_dim), self.filters, dtype
            ),
            discriminator=nets.dcgan_discriminator(
                image_shape, self.filters, int(pack), self.dropout, critic_dtype
            ),
            latent_dim=latent_dim,
            pack=pack,
            **kwargs,
        )

    def get_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "filters": self.filters,
            "dropout": self.dropout,
            **self._game_config(),
        }
