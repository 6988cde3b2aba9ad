"""Generative adversarial networks: `GAN`, any generator against any discriminator.

The minimax game of Goodfellow et al. (2014) between a generator ``G: z -> x`` and a
discriminator ``D: x -> logit``, ``D(x) = sigmoid(logit)``:

```none
min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]
```

The discriminator ascends its objective, i.e. minimizes the cross-entropy
``d_loss = -E[(1 - s) log D(x) + s log(1 - D(x))] - E[log(1 - D(G(z)))]`` with one-sided label
smoothing ``s`` (real targets ``1 - s``). For a fixed ``G`` and ``s = 0`` its optimum is
``D*(x) = p_data(x) / (p_data(x) + p_g(x))``. The generator uses the non-saturating loss
``g_loss = -E[log D(G(z))]`` by default, or the original ``E[log(1 - D(G(z)))]``
(``loss="minimax"``), whose gradient vanishes where ``D`` rejects the samples.

``loss="wasserstein"`` plays WGAN-GP (Gulrajani et al., 2017) instead: ``D`` is a critic with
unbounded scores, and with ``x_hat = eps x + (1 - eps) G(z)``, ``eps ~ U[0, 1]`` per pack (a
random point between a real and a generated sample),

```none
d_loss = E[D(G(z))] - E[D(x)] + lambda E[(||grad_x_hat D(x_hat)||_2 - 1)^2]
g_loss = -E[D(G(z))]
```

the penalty (weight ``lambda``, ``gradient_penalty``) keeping ``D`` near the 1-Lipschitz
functions over which ``E[D(x)] - E[D(G(z))]`` is the Wasserstein-1 distance. The critic then
has no dropout or batch norm to break the per-sample gradient, and it computes in float32 under
mixed precision, as does the penalty's gradient of a gradient (`DCGAN` builds it so).

Packing (PacGAN, Lin et al. 2018): with ``pack = m`` the discriminator judges ``m`` samples at
once, stacked along channels, all real or all generated; it then sees the diversity of a set,
the known cure for mode collapse. Logits and losses are float32 under mixed precision, and with
``mixed_float16`` both optimizers are loss-scaled.
"""

import os

import keras
import tensorflow as tf

from tfflows import minimize, record_step, sampling_arguments, skipped_steps_metric
from zoo import plots
from zoo.models.checks import whole_number
from zoo.models.contract import DataSpec, ZooModel
from zoo.models.gan.judge import FeatureClassifier
from zoo.models.gan.metrics import FrechetDistance, ModeCoverage
from zoo.models.noise import standard_normal, training_noise

LOSSES = ("non_saturating", "minimax", "wasserstein")


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """Mean binary cross-entropy of real logits against ``1 - s`` and fake ones against 0."""
    real_logits = tf.cast(real_logits, tf.float32)
    fake_logits = tf.cast(fake_logits, tf.float32)
    s = label_smoothing
    real = (1.0 - s) * tf.nn.softplus(-real_logits) + s * tf.nn.softplus(real_logits)
    return tf.reduce_mean(real) + tf.reduce_mean(tf.nn.softplus(fake_logits))


def generator_loss(fake_logits, loss="non_saturating"):
    """``-E[log D(G(z))]`` (non-saturating), ``E[log(1 - D(G(z)))]`` (minimax) or
    ``-E[D(G(z))]`` (wasserstein: ``D`` the critic's score)."""
    fake_logits = tf.cast(fake_logits, tf.float32)
    if loss == "non_saturating":
        return tf.reduce_mean(tf.nn.softplus(-fake_logits))
    if loss == "wasserstein":
        return -tf.reduce_mean(fake_logits)
    return tf.reduce_mean(-tf.nn.softplus(fake_logits))


def critic_loss(real_scores, fake_scores):
    """WGAN's critic loss ``E[D(G(z))] - E[D(x)]``, minus the Wasserstein-1 estimate."""
    return tf.reduce_mean(tf.cast(fake_scores, tf.float32)) - tf.reduce_mean(
        tf.cast(real_scores, tf.float32)
    )


@keras.saving.register_keras_serializable(package="zoo")
class GAN(ZooModel, keras.Model):
    """A GAN over images in ``[-1, 1]`` (or any tensors): ``compile(d_optimizer, g_optimizer)``
    then ``fit``.

    Args:
      generator: Keras model ``[batch, latent_dim] -> [batch, *shape]``.
      discriminator: Keras model ``[batch, *shape[:-1], pack * C] -> [batch, 1]`` logits.
      latent_dim: size of ``z ~ N(0, I)``.
      pack: samples judged together by the discriminator (PacGAN); batches are cut to a
        multiple of it.
      loss: ``"non_saturating"`` or ``"minimax"`` for the generator, or ``"wasserstein"``
        (WGAN-GP, with the penalty for both players' game).
      label_smoothing: one-sided smoothing ``s`` of the real targets (not for WGAN-GP).
      d_steps: discriminator updates per generator update.
      gradient_penalty: WGAN-GP's ``lambda`` (``loss="wasserstein"``; 10 in the paper).
      judge: a `FeatureClassifier` for the evaluation figures (classifier-Frechet distance,
        mode coverage); ``prepare`` trains one when the data has labels.
    """

    data_spec = DataSpec(scaling="symmetric", labels=True)
    monitor = None

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        pack=1,
        loss="non_saturating",
        label_smoothing=0.0,
        d_steps=1,
        judge=None,
        gradient_penalty=10.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
        if not float(gradient_penalty) >= 0.0:
            raise ValueError(f"gradient_penalty must be >= 0, got {gradient_penalty}.")
        if loss == "wasserstein" and float(label_smoothing):
            raise ValueError("label_smoothing is for the cross-entropy losses, not wasserstein.")
        whole_number("pack", pack)
        whole_number("d_steps", d_steps)
        whole_number("latent_dim", latent_dim)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.pack = int(pack)
        self.loss_name = loss
        self.label_smoothing = float(label_smoothing)
        self.d_steps = int(d_steps)
        self.gradient_penalty = float(gradient_penalty)
        self.trackers = [
            keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "real_score", "fake_score")
        ]
        self.skipped_steps = skipped_steps_metric()
        self.noise = keras.random.SeedGenerator(name="noise")
        self.judge = None
        if judge is not None:
            self.attach_judge(judge)
        self.built = True

    @property
    def image_shape(self):
        return tuple(self.generator.output_shape[1:])

    def attach_judge(self, judge):
        """Uses ``judge`` (a frozen `FeatureClassifier`) for the figures of ``evaluate``."""
        judge.trainable = False
        self.judge = judge
        self.frechet = FrechetDistance(judge.feature_dim)
        self.coverage = ModeCoverage(judge.num_classes)
        self.judge_accuracy = keras.metrics.SparseCategoricalAccuracy(name="judge_accuracy")

    @property
    def metrics(self):
        judged = [self.frechet, self.coverage, self.judge_accuracy] if self.judge else []
        return [*self.trackers, self.skipped_steps, *judged]

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        super().compile(optimizer=None, **kwargs)
        defaults = self.compile_defaults()
        self.d_optimizer = d_optimizer or defaults["d_optimizer"]
        self.g_optimizer = g_optimizer or defaults["g_optimizer"]
        # Keras loss-scales only `self.optimizer`; these two are ours to wrap.
        if self.dtype_policy.name == "mixed_float16":
            self.d_optimizer, self.g_optimizer = (
                o
                if isinstance(o, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(o)
                for o in (self.d_optimizer, self.g_optimizer)
            )
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self):
        return {"defaults": True}

    def compile_from_config(self, config):
        self.compile()

    def compile_defaults(self, learning_rate=None):
        """Adam(2e-4, beta_1 = 0.5) for both players, as in the DCGAN paper; for WGAN-GP
        Adam(1e-4, beta_1 = 0, beta_2 = 0.9), as in its paper."""
        if self.loss_name == "wasserstein":
            lr, betas = learning_rate or 1e-4, {"beta_1": 0.0, "beta_2": 0.9}
        else:
            lr, betas = learning_rate or 2e-4, {"beta_1": 0.5}
        return {"d_optimizer": self.adam(lr, **betas), "g_optimizer": self.adam(lr, **betas)}

    def optimizers_in_use(self):
        return [self.d_optimizer, self.g_optimizer]

    # The game.

    def generate(self, z, training=False):
        """``G(z)`` in the data's scale ``[-1, 1]``, float32."""
        return tf.cast(self.generator(z, training=training), tf.float32)

    def _packed(self, x):
        """``[m k, H, W, C] -> [k, H, W, m C]``: each row of the result is one pack."""
        if self.pack == 1:
            return x
        shape = tf.shape(x)
        x = tf.reshape(x, tf.concat([[-1, self.pack], shape[1:]], 0))
        x = tf.transpose(x, [0, *range(2, x.shape.rank - 1), 1, x.shape.rank - 1])
        return tf.reshape(x, tf.concat([[-1], shape[1:-1], [self.pack * shape[-1]]], 0))

    def discriminate(self, x, training=False):
        """Logits of the discriminator for the packs of ``x``, float32, shape ``[k]``."""
        logits = self.discriminator(self._packed(x), training=training)
        return tf.reshape(tf.cast(logits, tf.float32), [-1])

    def _whole_packs(self, x, *rest):
        n = tf.shape(x)[0] // self.pack * self.pack
        return (x[:n], *(r[:n] for r in rest))

    def _noise(self, n):
        return training_noise(self.noise, [n, self.latent_dim])

    def interpolates(self, real, fake, eps):
        """``eps x + (1 - eps) G(z)`` for ``eps`` ``[packs]`` in ``[0, 1]``, one per pack."""
        real, fake = tf.cast(real, tf.float32), tf.cast(fake, tf.float32)
        eps = tf.repeat(tf.cast(eps, tf.float32), self.pack)
        eps = tf.reshape(eps, [-1] + [1] * (real.shape.rank - 1))
        return eps * real + (1.0 - eps) * fake

    def penalty(self, x_hat, training=False):
        """WGAN-GP's ``E[(||grad D(x_hat)||_2 - 1)^2]`` over the packs of ``x_hat``, and those
        gradient norms ``[packs]``; float32, differentiable in the critic's weights."""
        x_hat = tf.cast(x_hat, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            scores = self.discriminate(x_hat, training=training)
        # Each pack's score depends on its own images alone: the sum's gradient is theirs.
        grads = self._packed(tape.gradient(scores, x_hat))
        grads = tf.reshape(grads, [tf.shape(grads)[0], -1])
        norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=1) + 1e-12)
        return tf.reduce_mean(tf.square(norms - 1.0)), norms

    def discriminator_objective(self, x, fake, training=True, eps=None):
        """``(d_loss, real_logits, fake_logits)`` for real ``x`` and generated ``fake``; WGAN-GP
        takes its penalty at `interpolates` with ``eps`` ``[packs]`` (default: uniform draws)."""
        real_logits = self.discriminate(x, training=training)
        fake_logits = self.discriminate(fake, training=training)
        if self.loss_name != "wasserstein":
            loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
            return loss, real_logits, fake_logits
        loss = critic_loss(real_logits, fake_logits)
        if self.gradient_penalty:
            if eps is None:
                eps = keras.random.uniform([tf.shape(real_logits)[0]], seed=self.noise)
            penalty, _ = self.penalty(self.interpolates(x, fake, eps), training=training)
            loss += self.gradient_penalty * penalty
        return loss, real_logits, fake_logits

    def train_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        (x,) = self._whole_packs(tf.cast(x, tf.float32))
        n = tf.shape(x)[0]

        def d_objective(z):
            def loss_fn():
                fake = self.generate(z, training=True)
                loss, real_logits, fake_logits = self.discriminator_objective(x, fake)
                return loss, (real_logits, fake_logits)

            return loss_fn

        # A skipped discriminator step skips the rest of the train step.
        state, applied = self.non_trainable_weights, tf.constant(True)
        for _ in range(self.d_steps):
            d_loss, (real_logits, fake_logits), applied = minimize(
                self.d_optimizer,
                self.discriminator.trainable_weights,
                d_objective(self._noise(n)),
                state,
                when=applied,
            )
        z = self._noise(n)

        def g_objective():
            fake = self.discriminate(self.generate(z, training=True), training=True)
            return generator_loss(fake, self.loss_name), fake

        g_loss, _, applied = minimize(
            self.g_optimizer, self.generator.trainable_weights, g_objective, state, when=applied
        )
        record_step(
            applied,
            self.skipped_steps,
            lambda: self._update_game_metrics(d_loss, g_loss, real_logits, fake_logits),
        )
        return {m.name: m.result() for m in [*self.trackers, self.skipped_steps]}

    def _update_game_metrics(self, d_loss, g_loss, real_logits, fake_logits):
        weight = tf.cast(tf.size(real_logits), tf.float32)
        d_tracker, g_tracker, real_tracker, fake_tracker = self.trackers
        d_tracker.update_state(d_loss, sample_weight=weight)
        g_tracker.update_state(g_loss, sample_weight=weight)
        # A critic's scores as they are; a discriminator's as probabilities.
        score = tf.identity if self.loss_name == "wasserstein" else tf.sigmoid
        real_tracker.update_state(tf.reduce_mean(score(real_logits)), sample_weight=weight)
        fake_tracker.update_state(tf.reduce_mean(score(fake_logits)), sample_weight=weight)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        fake = self.generate(self._noise(tf.shape(x)[0]))
        packed_real, packed_fake = self._whole_packs(x, fake)
        d_loss, real_logits, fake_logits = self.discriminator_objective(
            packed_real, packed_fake, training=False
        )
        self._update_game_metrics(
            d_loss, generator_loss(fake_logits, self.loss_name), real_logits, fake_logits
        )
        if self.judge is not None:
            real01, fake01 = (x + 1.0) / 2.0, (fake + 1.0) / 2.0
            self.frechet.update_state(self.judge.features(real01), self.judge.features(fake01))
            self.coverage.update_state(
                self.judge.predict_classes(fake01), self.judge.predict_classes(real01)
            )
            if y is not None:
                labelled = y >= 0
                self.judge_accuracy.update_state(
                    tf.boolean_mask(y, labelled),
                    tf.boolean_mask(self.judge(real01), labelled),
                )
        logs = {}
        for metric in self.metrics:
            result = metric.result()
            logs.update(result if isinstance(result, dict) else {metric.name: result})
        return logs

    # What the shared training path asks.

    def prepare(self, train, info, steps=600):
        """Trains a `FeatureClassifier` judge for ``steps`` batches of the labelled training
        images, when the data has labels and no judge was given."""
        if self.judge is not None or not info.num_classes:
            return
        judge = FeatureClassifier(info.image_shape, info.num_classes, name="judge")
        images = train.map(lambda x, y: ((x + 1.0) / 2.0, y))
        accuracy = judge.fit_labelled(images.repeat(), steps=steps)
        print(f"judge (feature classifier): training accuracy {accuracy:.4f} after {steps} steps")
        self.attach_judge(judge)

    def sample(self, num_samples, temperature=1.0, seed=None, class_id=None):
        """``num_samples`` images in ``[0, 1]``; ``z ~ N(0, T^2 I)``. ``seed``: an int
        (stateful) or a shape-[2] stateless seed."""
        self.unconditional(class_id)
        num_samples, temperature = sampling_arguments(num_samples, temperature)
        z = standard_normal([num_samples, self.latent_dim], seed)
        return tf.clip_by_value((self.generate(temperature * z) + 1.0) / 2.0, 0.0, 1.0)

    def fit_callbacks(self, out):
        return [plots.EpochSamples(os.path.join(out, "epochs"))]

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """``samples.png`` (``epochs/`` holds one grid per epoch: `fit_callbacks`)."""
        return [plots.model_samples(self, out, seed, temperature)]

    def headline(self, results):
        keys = [
            "frechet_distance",
            "classes_covered",
            "class_kl",
            "judge_accuracy",
            "d_loss",
            "g_loss",
        ]
        return {f"held_out_{k}": round(float(results[k]), 4) for k in keys if k in results}

    def serving_endpoints(self):
        """``generate`` (also ``serving_default``): ``z`` ``[batch, latent_dim]`` -> ``images``
        in ``[0, 1]``; ``discriminate``: ``images`` ``[batch, H, W, C]`` in ``[0, 1]`` ->
        ``probability`` that each is real, or a WGAN-GP critic's ``score`` (with ``pack > 1``
        each image is judged as a pack of copies of itself)."""
        z_spec = tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")
        images_spec = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")

        def generate(z):
            return {"images": tf.clip_by_value((self.generate(z) + 1.0) / 2.0, 0.0, 1.0)}

        def discriminate(images):
            x = 2.0 * images - 1.0
            x = tf.repeat(x, self.pack, axis=0)
            if self.loss_name == "wasserstein":
                return {"score": self.discriminate(x)}
            return {"probability": tf.sigmoid(self.discriminate(x))}

        return {
            "generate": (generate, [z_spec]),
            "discriminate": (discriminate, [images_spec]),
        }

    def feature_extractor(self):
        """The discriminator up to its last hidden layer (images in ``[-1, 1]``; with
        ``pack > 1`` it takes ``pack`` stacked images)."""
        if not isinstance(self.discriminator, keras.Sequential):
            raise NotImplementedError("feature_extractor needs a Sequential discriminator.")
        layers = self.discriminator.layers[:-1]
        inputs = keras.Input(self.discriminator.input_shape[1:])
        return keras.Sequential([inputs, *layers], name="discriminator_features"), "symmetric"

    def _game_config(self):
        return {
            "latent_dim": self.latent_dim,
            "pack": self.pack,
            "loss": self.loss_name,
            "label_smoothing": self.label_smoothing,
            "d_steps": self.d_steps,
            "gradient_penalty": self.gradient_penalty,
            "judge": keras.saving.serialize_keras_object(self.judge) if self.judge else None,
        }

    def get_config(self):
        return {
            **self.base_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            **self._game_config(),
        }
