"""`ImageFlow`: the zoo's flows over images (NICE, RealNVP, Glow), on top of `tfflows.Flow`.

They take dequantized images ``y = (x + u) / K`` in ``[0, 1)`` (``zoo.data.load`` makes them)
and report, besides the loss (negative log-likelihood in nats per image), ``bits_per_dim`` of the
*discrete* data: ``-(log p(y) - D log K) / (D log 2)``, with ``K`` the data's own number of levels
(``num_levels``). Logit preprocessing is a bijector inside the flow, so its log-det is part of
``log p(y)`` and the figure is comparable with the papers'.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfflows
from zoo import plots
from zoo.models import checks
from zoo.models.contract import DataSpec, ZooModel
from zoo.models.noise import tfp_seed

tfb = tfp.bijectors

DEQUANTIZATIONS = ("uniform", "variational")
CONDITIONINGS = ("full", "prior")


class ImageFlow(ZooModel, tfflows.Flow):
    """A `tfflows.Flow` over images in ``[0, 1]`` that also tracks bits/dim.

    With ``dequantization="variational"`` a `tfflows.VariationalDequantizer` ``q(u | x)``,
    trained with the flow, replaces the data's uniform noise: the model recovers each image's
    levels ``x = floor(K y)`` from its (uniformly dequantized or centred) input ``y``, draws
    ``u ~ q(u | x)``, and `fit` maximizes, `evaluate` and `bits_per_dim` report, the bound
    ``log p((x + u) / K) - log q(u | x)`` (one draw per image). ``log_prob`` stays the flow's
    density of the input it is given (so do the exported signatures).

    With ``num_classes = C > 0`` the flow is class-conditional, ``p(x | c)``: every coupling's
    conditioner also sees the one-hot class (`tfflows.Flow`'s context) and the base is Glow's
    class-conditional prior ``N(mu(c), diag(sigma(c)^2))``. It trains on ``(images, labels)``
    (``zoo train ... --set conditional=true`` builds it with the data's classes), samples
    ``class_id``, and is a generative classifier by Bayes' rule with a uniform class prior,

    ```none
    p(c | x) = p(x | c) / sum_c' p(x | c'),
    ```

    whose ``accuracy`` `evaluate` reports beside the bits/dim (under variational dequantization
    the bound, whose ``- log q(u | x)`` term, the same draw for every class, cancels).

    ``conditioning="prior"`` keeps the class out of the couplings: only the base depends on it,
    so ``z = f(x)`` is one map for every class and the classes are Gaussians in its latent space,
    ``p(x | c) = N(f(x); mu(c), diag(sigma(c)^2)) |det df/dx|`` (the class-conditional prior of
    Kingma and Dhariwal, 2018, alone; Izmailov et al., 2020). Bayes' rule then costs one pass
    of the flow instead of one per class, and `zoo.Transflow` reads its prior for new classes
    from the spread of ``mu(c)``.

    Args:
      bijectors: the flow's bijectors, data side first.
      image_shape: ``(H, W, C)`` of the images.
      num_levels: number of discrete levels per value of the original data (256 for 8-bit).
      base_distribution: ``"normal"`` or ``"logistic"``.
      dequantization: ``"uniform"`` or ``"variational"``.
      num_classes: ``C`` of a class-conditional flow; 0 for an unconditional one.
      class_labels: a class-conditional flow's dataset label of each class (default
        ``0 .. C-1``; a run on some ``--classes`` records them), so that `zoo evaluate` loads
        the same classes.
      conditioning: a class-conditional flow's ``"full"`` (the class in every coupling and in
        the base) or ``"prior"`` (in the base only).

    References:
      Kingma, D. P. and Dhariwal, P. (2018). Glow: Generative flow with invertible 1x1
        convolutions. Advances in Neural Information Processing Systems 31.
      Izmailov, P., Kirichenko, P., Finzi, M. and Wilson, A. G. (2020). Semi-supervised
        learning with normalizing flows. Proceedings of the 37th International Conference on
        Machine Learning, PMLR 119, 4615-4630.
    """

    def __init__(
        self,
        bijectors,
        image_shape,
        num_levels,
        base_distribution="normal",
        dequantization="uniform",
        num_classes=0,
        class_labels=None,
        conditioning="full",
        **kwargs,
    ):
        kwargs.setdefault("validate_args", True)
        num_classes = checks.whole_number("num_classes", num_classes, minimum=0)
        self.conditioning = check_conditioning(conditioning)
        super().__init__(
            bijectors,
            image_shape,
            base_distribution=base_distribution,
            context_size=num_classes,
            conditional_base=num_classes > 0,
            **kwargs,
        )
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}.")
        if dequantization not in DEQUANTIZATIONS:
            raise ValueError(
                f"dequantization must be one of {DEQUANTIZATIONS}, got {dequantization!r}."
            )
        self.num_levels = int(num_levels)
        self.num_classes = num_classes
        self.class_labels = checks.class_labels(class_labels, num_classes) if num_classes else None
        self.num_dims = math.prod(self.image_shape)
        self.dequantization = dequantization
        if dequantization == "variational":
            self.dequantizer = tfflows.VariationalDequantizer(
                self.image_shape, self.num_levels, dtype=kwargs.get("dtype")
            )
        self.bits_tracker = keras.metrics.Mean(name="bits_per_dim")
        if num_classes:
            self.data_spec = DataSpec(labels=True)
            self.accuracy_tracker = keras.metrics.Mean(name="accuracy")

    @classmethod
    def data_spec_for(cls, options):
        """Labelled batches for a class-conditional flow."""
        if options.get("conditional") or options.get("num_classes"):
            return DataSpec(labels=True)
        return cls.data_spec

    @classmethod
    def from_data(cls, info, conditional=False, **options):
        """``conditional=True``: a class-conditional flow over the data's classes."""
        if conditional:
            if not info.num_classes:
                raise ValueError(
                    f"conditional=True needs labelled data: {info.name} has no labels."
                )
            options["num_classes"] = info.num_classes
            options["class_labels"] = info.classes
        return cls(image_shape=info.image_shape, num_levels=info.num_levels, **options)

    @property
    def image_shape(self):
        return self.event_shape

    @property
    def metrics(self):
        classified = [self.accuracy_tracker] if self.num_classes else []
        return [self.loss_tracker, self.bits_tracker, *classified, self.skipped_steps]

    def train_step(self, data):
        logs = super().train_step(data)
        if self.num_classes:  # the Bayes-rule accuracy costs C log-likelihoods: evaluate has it
            del logs[self.accuracy_tracker.name]
        return logs

    def _validate(self, x):
        x = super()._validate(x)
        if self.validate_args:
            x = checks.unit_images(x, f"{type(self).__name__}'s input images")
        return x

    def bits_per_dim(self, x, context=None):
        """Bits/dim of each image's discrete original, from its dequantized value ``x`` (and,
        for a class-conditional flow, its class)."""
        log_likelihood = self.log_likelihood(x, context=context)
        return tfflows.bits_per_dim(log_likelihood, self.num_dims, self.num_levels)

    def log_likelihood(self, x, training=False, context=None):
        """``log_prob``, or with variational dequantization the bound
        ``log p((x + u) / K) - log q(u | x)``, ``u ~ q(u | x)``, ``x = floor(K y)``."""
        if self.dequantization == "uniform":
            return super().log_likelihood(x, training, context)
        y, log_q = self._dequantized(x)
        return self.log_prob(y, context, training=training) - log_q

    def _dequantized(self, x):
        """``(y, log q(u | x))``: the input itself and 0 under uniform dequantization, else
        ``(x + u) / K`` with ``u ~ q(u | x)``."""
        y = self._validate(x)
        if self.dequantization == "uniform":
            return y, 0.0
        if y.shape.rank and y.shape[0] == 0:
            return y, tf.zeros([0], tf.float32)
        levels = tf.clip_by_value(tf.floor(y * self.num_levels), 0.0, self.num_levels - 1.0)
        noise, log_q = self.dequantizer(levels)
        return (levels + noise) / self.num_levels, log_q

    def class_log_likelihoods(self, x):
        """``[batch, C]``: `log_likelihood` of each image under each class (one flow pass per
        class, or one in all for ``conditioning="prior"``; the same dequantization draw for
        all)."""
        if not self.num_classes:
            raise ValueError(f"This {type(self).__name__} is not class-conditional.")
        y, log_q = self._dequantized(x)
        batch = tf.shape(y)[0]
        if not self.maps_with_context:  # one pass: only the base depends on the class
            z, log_det = self._encode(y, False, None)
            classes = tf.eye(self.num_classes)
            base = self.base(context=classes)
            per_class = base.log_prob(z[:, None]) + log_det[:, None]
            return per_class - tf.reshape(log_q, [-1, 1])

        def under(c):
            return self.log_prob(y, tf.fill([batch], c))

        per_class = tf.map_fn(under, tf.range(self.num_classes), fn_output_signature=tf.float32)
        return tf.transpose(per_class) - tf.reshape(log_q, [-1, 1])

    def classify(self, x):
        """``(class_ids, log_probs)``: Bayes' rule with a uniform class prior,
        ``log p(c | x)`` ``[batch, C]``, and its argmax (see the class docstring)."""
        log_probs = tf.nn.log_softmax(self.class_log_likelihoods(x), axis=-1)
        return tf.argmax(log_probs, axis=-1), log_probs

    def importance_weighted_log_likelihood(self, x, samples=64, seed=None, context=None):
        """A tighter bound on each image's discrete log-likelihood than `log_likelihood`'s one
        draw: importance weighting over ``S = samples`` draws of the dequantization noise
        (Burda et al., 2016), in the units of ``log_prob`` (`tfflows.bits_per_dim` converts):

        ```none
        log P(x) + D log K >= E[log (1/S) sum_s p((x + u_s) / K) / q(u_s | x)],  u_s ~ q(u | x)
        ```

        ``q`` is the learned dequantizer, or ``U[0, 1)^D`` (``q = 1``) under uniform
        dequantization. ``S = 1`` is the training bound; the bound rises with ``S`` to
        ``log P(x) + D log K``. ``x``: dequantized (or centred) images, whose levels
        ``floor(K x)`` are scored; ``seed`` fixes uniform draws (a learned ``q`` draws from its
        own generator); ``context``: a conditional flow's classes. Runs the flow on ``S``
        times the batch.
        """
        checks.whole_number("samples", samples)
        y = self._validate(x)
        if context is not None:
            context = tf.repeat(self.as_context(context), samples, axis=0)
        levels = tf.clip_by_value(tf.floor(y * self.num_levels), 0.0, self.num_levels - 1.0)
        repeated = tf.repeat(levels, samples, axis=0)  # image i's draws at i * S ... i * S + S - 1
        if self.dequantization == "variational":
            noise, log_q = self.dequantizer(repeated)
        else:
            shape, log_q = tf.shape(repeated), 0.0
            if seed is None:
                noise = tf.random.uniform(shape)
            else:
                noise = tf.random.stateless_uniform(shape, seed)
        log_w = self.log_prob((repeated + noise) / self.num_levels, context) - log_q
        log_w = tf.reshape(log_w, [-1, samples])
        return tf.reduce_logsumexp(log_w, axis=1) - math.log(samples)

    def statistics_layers(self):
        return [
            *super().statistics_layers(),
            *(b for b in self.all_bijectors if isinstance(b, tfflows.bijectors.BatchNorm)),
        ]

    def statistics_pass(self, batch):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        self.log_likelihood(x, training=True, **self._context_of(y))

    def test_step(self, data):
        """`tfflows.Flow`'s, and a class-conditional flow's generative-classifier accuracy
        (`class_log_likelihoods`; its own class's column is the loss's log-likelihood)."""
        if not self.num_classes:
            return super().test_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        # Checked (labels in range, or one-hot rows) as fit checks them.
        labels = tf.argmax(self.as_context(self._context_of(y)["context"]), -1, tf.int32)
        per_class = self.class_log_likelihoods(x)
        self.update_metrics(tf.gather(per_class, labels, axis=1, batch_dims=1), sample_weight)
        guess = tf.argmax(per_class, axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(guess, labels), tf.float32)
        mean, total = tfflows.weighted_mean(correct, sample_weight)
        self.accuracy_tracker.update_state(mean, sample_weight=total)
        return {m.name: m.result() for m in self.metrics}

    def update_metrics(self, log_prob, sample_weight=None):
        super().update_metrics(log_prob, sample_weight)
        bits = tfflows.bits_per_dim(log_prob, self.num_dims, self.num_levels)
        mean, total = tfflows.weighted_mean(bits, sample_weight)
        self.bits_tracker.update_state(mean, sample_weight=total)

    def sample(self, num_samples, temperature=1.0, seed=None, class_id=None):
        """Images in ``[0, 1]``: samples of the dequantized density, clipped to the pixel range.
        (``sample_and_log_prob`` gives the same draws unclipped, with their log-density.) A
        class-conditional flow draws class ``class_id`` (an int, or one per sample), by default
        the classes in turn (sample ``i`` of class ``i mod C``)."""
        # The flow's own sampling, past the contract's default (which refuses).
        context = self._classes(num_samples, class_id)
        images = tfflows.Flow.sample(self, num_samples, temperature, seed, context=context)
        return tf.clip_by_value(images, 0.0, 1.0)

    def _classes(self, num_samples, class_id):
        """The class labels ``[num_samples]`` `sample` draws (None: an unconditional flow)."""
        if not self.num_classes:
            self.unconditional(class_id)
            return None
        if class_id is None:
            return tf.range(int(num_samples)) % self.num_classes
        ids = np.asarray(class_id)
        if not np.issubdtype(ids.dtype, np.integer) or ids.ndim > 1:
            raise ValueError(f"class_id must be an int or a list of ints, got {class_id!r}.")
        if ids.ndim == 1 and len(ids) != int(num_samples):
            raise ValueError(
                f"class_id gives {len(ids)} classes for {num_samples} samples: give one class or "
                "one per sample."
            )
        if ids.size and not (0 <= ids.min() and ids.max() < self.num_classes):
            raise ValueError(f"class_id must be in 0 .. {self.num_classes - 1}, got {class_id!r}.")
        return tf.broadcast_to(tf.constant(ids, tf.int32), [int(num_samples)])

    def export_metadata(self):
        """What a user of the SavedModel needs beyond its signatures (e.g. Transflow)."""
        return {
            "base_distribution": self.base_distribution,
            "image_shape": list(self.image_shape),
            "latent_shape": list(self.latent_shape),
            "num_levels": self.num_levels,
            "num_classes": self.num_classes,
            "conditioning": self.conditioning,
        }

    def serving_endpoints(self):
        """Signatures for `zoo.serving.export`: ``log_prob`` (also ``serving_default``), ``sample``,
        ``encode``, ``decode``. Inputs ``images`` ``[batch, H, W, C]`` float32 in ``[0, 1]``
        (dequantized), ``z`` ``[batch, *latent_shape]``; to sample at a temperature ``T``, the
        caller draws ``z`` from the prior and multiplies it by ``T``. ``sample`` also returns
        each draw's ``log_prob`` (before clipping), ``decode`` the ``log_det``
        ``log|det dx/dz|``, from the one forward pass.

        A class-conditional flow's signatures take the class, ``labels`` ``[batch]`` int64:
        ``log_prob(images, labels)``, ``sample(labels, temperature, seed)`` (one draw of each
        label's class at ``temperature``, ``seed`` ``[2]`` int64: the same seed, the same
        draws), ``encode(images, labels)``, ``decode(z, labels)``; and ``classify(images)``
        gives ``class_ids`` and ``log_probs`` ``log p(c | x)`` (`classify`); one with
        ``conditioning="prior"`` encodes and decodes without the class and gives its
        ``class_prior``."""
        if self.num_classes:
            return self._conditional_endpoints()
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        latents = tf.TensorSpec([None, *self.latent_shape], tf.float32, name="z")

        def log_prob(images):
            return self._scores(self.log_prob(images))

        def sample(z):
            images, log_prob = self.decode_and_log_prob(z)
            return {"images": tf.clip_by_value(images, 0.0, 1.0), "log_prob": log_prob}

        def encode(images):
            return {"z": self.encode(images)}

        def decode(z):
            images, log_det = self.decode_with_log_det(z)
            return {"images": images, "log_det": log_det}

        return {
            "log_prob": (log_prob, [images]),
            "sample": (sample, [latents]),
            "encode": (encode, [images]),
            "decode": (decode, [latents]),
        }

    def _scores(self, log_prob):
        bits = tfflows.bits_per_dim(log_prob, self.num_dims, self.num_levels)
        return {"log_prob": log_prob, "bits_per_dim": bits}

    def _conditional_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        latents = tf.TensorSpec([None, *self.latent_shape], tf.float32, name="z")
        labels = tf.TensorSpec([None], tf.int64, name="labels")
        temperature = tf.TensorSpec([], tf.float32, name="temperature")
        seed = tf.TensorSpec([2], tf.int64, name="seed")

        def log_prob(images, labels):
            return self._scores(self.log_prob(images, labels))

        def sample(labels, temperature, seed):
            context = self.as_context(labels)
            z = self.base(temperature, context).sample(seed=tfp_seed(seed))
            images, log_prob = self.decode_and_log_prob(z, context)
            return {"images": tf.clip_by_value(images, 0.0, 1.0), "log_prob": log_prob}

        def encode(images, labels):
            return {"z": self.encode(images, context=labels)}

        def decode(z, labels):
            images, log_det = self.decode_with_log_det(z, labels)
            return {"images": images, "log_det": log_det}

        def classify(images):
            class_ids, log_probs = self.classify(images)
            return {"class_ids": class_ids, "log_probs": log_probs}

        endpoints = {
            "log_prob": (log_prob, [images, labels]),
            "sample": (sample, [labels, temperature, seed]),
            "encode": (encode, [images, labels]),
            "decode": (decode, [latents, labels]),
            "classify": (classify, [images]),
        }
        if not self.maps_with_context:
            endpoints.update(self._class_prior_endpoints(images, latents, labels))
        return endpoints

    def _class_prior_endpoints(self, images, latents, labels):
        """``conditioning="prior"``: ``encode(images)`` and ``decode(z)`` take no class (the map
        is the same for all), and ``class_prior(labels)`` gives each label's base ``loc`` and
        ``scale`` ``[batch, *latent_shape]``."""

        def encode(images):
            return {"z": self.encode(images)}

        def decode(z):
            images, log_det = self.decode_with_log_det(z)
            return {"images": images, "log_det": log_det}

        def class_prior(labels):
            base = self.base(context=self.as_context(labels)).distribution
            return {"loc": base.loc, "scale": base.scale}

        return {
            "encode": (encode, [images]),
            "decode": (decode, [latents]),
            "class_prior": (class_prior, [labels]),
        }

    def write_artifacts(self, out, data, seed=0, temperature=0.8):
        """``samples.png``; a class-conditional flow's has a row of 8 per class."""
        if not self.num_classes:
            return [plots.model_samples(self, out, seed, temperature)]
        class_ids = np.repeat(np.arange(self.num_classes), 8)
        images = self.sample(len(class_ids), temperature, seed=[seed, 0], class_id=class_ids)
        title = f"{self.name} samples, a row per class, T = {temperature}"
        plots.sample_grid(images, os.path.join(out, "samples.png"), title=title, columns=8)
        return ["samples.png"]

    def headline(self, results):
        classified = {}
        if "accuracy" in results:  # a class-conditional flow's generative classifier
            classified["held_out_accuracy"] = round(float(results["accuracy"]), 4)
        return {
            "held_out_bits_per_dim": round(float(results["bits_per_dim"]), 4),
            "held_out_log_likelihood_nats": round(-float(results["loss"]), 4),
            "held_out_loss_nats": round(float(results["loss"]), 4),
            **classified,
        }

    def _image_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "num_levels": self.num_levels,
            "validate_args": self.validate_args,
            "dequantization": self.dequantization,
            "num_classes": self.num_classes,
            "class_labels": self.class_labels,
            "conditioning": self.conditioning,
        }


def check_conditioning(conditioning):
    """``conditioning`` checked: one of `CONDITIONINGS`."""
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}.")
    return conditioning


def coupling_context(num_classes, conditioning):
    """The context width of a flow's couplings: the classes under ``"full"`` conditioning,
    none under ``"prior"``."""
    return num_classes if check_conditioning(conditioning) == "full" else 0


def flatten(image_shape):
    """Inverse (data -> latent): ``[H, W, C] -> [H * W * C]``."""
    return tfb.Reshape(event_shape_out=list(image_shape), event_shape_in=[math.prod(image_shape)])


def logit_alpha(alpha):
    """The logit's margin ``alpha``, checked: a number in ``[0, 0.5)``."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha < 0.5:
        raise ValueError(f"alpha must be a number in [0, 0.5), got {alpha!r}.")
    return float(alpha)
