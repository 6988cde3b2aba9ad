"""Transflow learning (Gambardella, Baydin and Torr, 2019): repurpose a trained flow without
retraining it, by Bayesian inference in its latent space.

A flow maps an image ``x`` to a latent ``z = f(x)`` in ``R^D``. Given ``n`` examples
``z_1..n`` of a new kind (per class), each latent dimension is modelled as ``z_i ~ N(mu,
sigma^2)``, with a conjugate prior on the new kind's mean that the flow gives, per dimension:
its centre ``m_0``, the spread ``b`` of kinds' means about it and the spread ``w`` of examples
about their kind's mean. ``kappa_0 = strength * w / b`` pseudo-examples strong:

```none
mu ~ N(m_0, sigma^2 / kappa_0)             kappa_n = kappa_0 + n
mu | z_1..n ~ N(m_n, sigma^2 / kappa_n)    m_n = (kappa_0 m_0 + sum_i z_i) / kappa_n
z* | z_1..n ~ N(m_n, sigma^2 (1 + 1 / kappa_n))
```

* An unconditional flow's base is i.i.d. with mean 0 and variance ``s^2`` (``s^2 = 1`` for the
  normal base; for a logistic base, NICE's, moment-matched: ``s^2 = pi^2 / 3``): ``m_0 = 0``,
  ``w = b = s^2``, so ``kappa_0 = strength``.
* A flow whose class is in its base alone (``conditioning="prior"``: ``z | c ~ N(mu_c,
  diag(sigma_c^2))`` over its ``C`` training classes, one map ``f`` for all) shows how kinds
  differ: ``m_0 = mean_c mu_c``, ``b = var_c mu_c``, ``w = mean_c sigma_c^2`` (empirical Bayes
  over its classes). A dimension in which the classes' means hardly differ (``b << w``) gets
  a strong prior, stays near ``m_0`` for every new class and carries no weight in
  classification; those in which they differ follow the examples.

``variance="fixed"``: ``sigma^2 = w``. ``variance="estimate"`` also infers a per-dimension
``sigma^2`` with the conjugate inverse-gamma prior ``IG(alpha_0 = strength / 2 + 1, beta_0 =
strength w / 2)`` (prior mean ``w``, ``strength`` pseudo-observations):

```none
alpha_n = alpha_0 + n / 2
beta_n = beta_0 + (1/2) sum_i (z_i - zbar)^2 + kappa_0 n (zbar - m_0)^2 / (2 kappa_n)
z* | z_1..n ~ StudentT(2 alpha_n, m_n, beta_n (kappa_n + 1) / (alpha_n kappa_n))
```

A strong prior (large ``strength``) keeps samples near what the flow knows; a weak one follows
the examples. With no examples the posterior is the prior. Sampling draws ``z*`` (its spread
times ``temperature``) and decodes it. Few-shot classification fits one posterior per class
and predicts the class whose predictive density of ``f(x)`` is highest: the flow's log-det
``log |det df/dx|`` is the same for every class and cancels.

References:
  Gambardella, A., Baydin, A. G. and Torr, P. H. S. (2019). Transflow learning: Repurposing
    flow models without retraining. arXiv:1911.13270.
  Murphy, K. P. (2007). Conjugate Bayesian analysis of the Gaussian distribution. Technical
    report, University of British Columbia (the normal-inverse-gamma updates above).
  Izmailov, P., Kirichenko, P., Finzi, M. and Wilson, A. G. (2020). Semi-supervised learning
    with normalizing flows. ICML 2020 (classes as Gaussians in a flow's latent space).

The statistics (counts, sums and sums of squares of the latents, per class) are non-trainable
variables, so ``fit`` on a dataset of any size computes the posterior in one pass (each epoch
recomputes it from its data; ``observe`` adds to it), and ``.keras`` / SavedModel export carry
it with nothing special.
"""

import json
import math
import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfflows import (
    all_finite,
    all_replicas,
    record_step,
    sampling_arguments,
    skipped_steps_metric,
)
from zoo import plots
from zoo.models import checks
from zoo.models.contract import DataSpec, Phase, RunPlan, ZooModel
from zoo.models.noise import standard_normal, tfp_seed
from zoo.models.transflow.saved_model_flow import SavedModelFlow, class_prior, load_flow
from zoo.models.transflow.variances import BASE_VARIANCE, VARIANCES

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="zoo")
class Transflow(ZooModel, keras.Model):
    """The posterior latent Gaussian(s) of a trained flow given a few examples (see the module).

    ``compile()``, then ``fit(images)`` (one class) or ``fit((images, labels))``; ``sample``,
    ``interpolate``, ``classify``; ``evaluate`` gives ``accuracy`` and ``latent_log_prob``.

    Args:
      flow: a zoo flow (``NICE``, ``RealNVP``, ``Glow``; unconditional or with
        ``conditioning="prior"``), the path of its ``.keras`` file or of its exported
        SavedModel (`zoo export`). It stays frozen.
      num_classes: posteriors to fit (labels ``0 .. num_classes - 1``).
      strength: the prior's weight (> 0): ``kappa_0`` pseudo-examples for an unconditional
        flow; a multiple of the flow's own ``w / b`` for one with a class prior.
      variance: ``"fixed"`` (``w``) or ``"estimate"`` (per dimension, inverse-gamma).
      class_labels: the dataset's label of each class (``zoo.data``'s ``classes``).
    """

    # The bins' centres, the mean of the dequantized value: uniform noise would move the
    # latents of the few examples at random (digits, 5 per class: accuracy 0.52 vs 0.29).
    data_spec = DataSpec(scaling="centered", labels=True)
    model_file_options = ("flow",)
    monitor = None

    def __init__(
        self, flow, num_classes=1, strength=1.0, variance="fixed", class_labels=None, **kwargs
    ):
        super().__init__(**kwargs)
        if variance not in VARIANCES:
            raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}.")
        if not float(strength) > 0:
            raise ValueError(f"strength must be positive, got {strength}.")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
        self.flow = load_flow(flow)
        if isinstance(flow, str | os.PathLike):
            self.flow_path = os.path.abspath(os.fspath(flow))
        else:
            self.flow_path = getattr(self.flow, "path", None)
        if isinstance(self.flow, keras.Model):
            self.flow.trainable = False
        base = getattr(self.flow, "base_distribution", "normal")
        if base not in BASE_VARIANCE:
            raise ValueError(f"No Transflow rule for a {base!r} base.")
        self.base_variance = BASE_VARIANCE[base]
        self.flow_prior()  # checks the flow's class prior, if it has one
        self.num_classes = int(num_classes)
        self.class_labels = checks.class_labels(class_labels, self.num_classes)
        self.strength = float(strength)
        self.variance = variance
        self.image_shape = tuple(int(n) for n in self.flow.image_shape)
        self.latent_shape = tuple(int(n) for n in self.flow.latent_shape)
        dims = math.prod(self.latent_shape)
        shape = (self.num_classes, dims)
        self.count, self.total, self.total_squares = (
            self.add_weight(
                shape=s,
                initializer="zeros",
                dtype="float64",
                trainable=False,
                autocast=False,
                aggregation="mean",
                name=name,
            )
            for s, name in (((self.num_classes,), "count"), (shape, "total"), (shape, "squares"))
        )
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.log_prob_tracker = keras.metrics.Mean(name="latent_log_prob")
        self.skipped_steps = skipped_steps_metric()
        self.built = True

    def flow_prior(self):
        """``(m_0, w, b)`` ``[D]`` float64, the prior the flow gives (see the module); from
        its weights at each call, so that a loaded model's are the ones read."""
        dims = math.prod(self.flow.latent_shape)
        prior = class_prior(self.flow)
        if prior is None:
            s2 = tf.fill([dims], tf.constant(self.base_variance, tf.float64))
            return tf.zeros([dims], tf.float64), s2, s2
        loc, scale = prior
        if loc.shape[0] < 2:
            raise ValueError("A flow's class prior tells how classes differ only with 2 or more.")
        within = tf.reduce_mean(tf.square(scale), axis=0) * self.base_variance
        between = tf.math.reduce_variance(loc, axis=0)
        # A dimension where the classes' means coincide: a prior that holds the mean at m_0.
        between = tf.maximum(between, 1e-12 * within)
        return tf.reduce_mean(loc, axis=0), within, between

    @classmethod
    def from_data(cls, info, **options):
        if "flow" not in options:
            raise ValueError(
                "Transflow needs a trained flow: --set flow=PATH (.keras or SavedModel)."
            )
        classes = info.classes if info.classes is not None else range(info.num_classes or 1)
        model = cls(num_classes=info.num_classes or 1, class_labels=list(classes), **options)
        model.check_data(info)
        return model

    def compile_defaults(self, learning_rate=None):
        return {}

    @property
    def metrics(self):
        if self.num_classes == 1:
            return [self.log_prob_tracker, self.skipped_steps]
        return [self.accuracy_tracker, self.log_prob_tracker, self.skipped_steps]

    # The statistics.

    def latents(self, images):
        """``f(x)`` flattened, ``[batch, D]`` float64."""
        z = self.flow.encode(tf.cast(images, tf.float32))
        return tf.cast(tf.reshape(z, [tf.shape(z)[0], -1]), tf.float64)

    def reset_statistics(self):
        for v in (self.count, self.total, self.total_squares):
            v.assign(tf.zeros_like(v))

    def observe(self, images, labels=None):
        """Adds ``images`` (of classes ``labels``; default 0) to the posterior; a batch with a
        non-finite latent (on any replica) adds nothing. Returns whether it was added."""
        z = self.latents(images)
        added = all_replicas(all_finite([z]))
        z = tf.where(added, z, 0.0)
        labels = tf.zeros(tf.shape(z)[0], tf.int64) if labels is None else labels
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int64)
        tf.debugging.assert_less(
            labels, tf.cast(self.num_classes, tf.int64), f"labels must be < {self.num_classes}"
        )
        tf.debugging.assert_non_negative(labels, "labels must be >= 0")
        # Under tf.distribute a mirrored variable's new value is the mean of the replicas'
        # (a "sum" aggregation would sum v + d_r, counting v once per replica): so each
        # replica adds N times its share, and the mean adds the sum of the shares.
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        one_hot = tf.one_hot(labels, self.num_classes, dtype=tf.float64) * float(replicas)
        one_hot *= tf.cast(added, tf.float64)
        self.count.assign_add(tf.reduce_sum(one_hot, axis=0))
        self.total.assign_add(tf.matmul(one_hot, z, transpose_a=True))
        self.total_squares.assign_add(tf.matmul(one_hot, tf.square(z), transpose_a=True))
        return added

    def fit(self, *args, callbacks=None, **kwargs):
        """``keras.Model.fit`` that computes the posterior from the data: each epoch starts from
        the prior, so any number of epochs gives the one-pass posterior."""
        reset = keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: self.reset_statistics())
        return super().fit(*args, callbacks=[*(callbacks or []), reset], **kwargs)

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.num_classes == 1:
            y = None
        record_step(self.observe(x, y), self.skipped_steps, lambda: None)
        return {"examples": tf.reduce_sum(self.count), "skipped_steps": self.skipped_steps.result()}

    # The posterior.

    def posterior(self):
        """Per class: ``mean`` ``m_n``, ``mean_variance`` (of ``mu``), and the predictive's
        ``df`` (inf for ``"fixed"``: normal) and ``scale`` ``[num_classes, D]``, float64."""
        return self._posterior(self.count, self.total, self.total_squares)

    def prior(self):
        """`posterior` with no examples, ``[1, D]`` each."""
        zeros = tf.zeros([1, self.total.shape[1]], tf.float64)
        return self._posterior(tf.zeros([1], tf.float64), zeros, zeros)

    def _posterior(self, count, total, total_squares):
        n = count[:, None]
        m0, w, b = self.flow_prior()
        kappa0 = self.strength * w / b
        kappa = kappa0 + n
        mean = (kappa0 * m0 + total) / kappa
        if self.variance == "fixed":
            sigma2 = w * tf.ones_like(mean)
            df = tf.fill(tf.shape(mean), tf.constant(np.inf, tf.float64))
            scale2 = sigma2 * (1.0 + 1.0 / kappa)
        else:
            zbar = total / tf.maximum(n, 1.0)
            squares = tf.maximum(total_squares - n * tf.square(zbar), 0.0)
            alpha = self.strength / 2.0 + 1.0 + n / 2.0
            beta = (
                self.strength * w / 2.0
                + squares / 2.0
                + kappa0 * n * tf.square(zbar - m0) / (2.0 * kappa)
            )
            sigma2 = beta / (alpha - 1.0)
            df = 2.0 * alpha * tf.ones_like(mean)
            scale2 = beta * (kappa + 1.0) / (alpha * kappa)
        return {
            "mean": mean,
            "mean_variance": sigma2 / kappa,
            "df": df,
            "scale": tf.sqrt(scale2),
        }

    def training_phases(self, epochs):
        """One pass over the data computes the posterior; more would recompute it."""
        return [Phase("fit", 1)]

    @classmethod
    def plan_run(cls, run, describe):
        """Every example once: no repeated epochs of a few examples (``steps_per_epoch``)."""
        return RunPlan(changes={"steps_per_epoch": None})

    def _predictive(self, posterior):
        if self.variance == "fixed":
            return tfd.Normal(posterior["mean"], posterior["scale"])
        return tfd.StudentT(posterior["df"], posterior["mean"], posterior["scale"])

    def class_log_probs(self, images):
        """``log p(f(x) | class c's examples)`` ``[batch, num_classes]`` (latent part)."""
        return self.latent_class_log_probs(self.latents(images))

    def latent_class_log_probs(self, z):
        """`class_log_probs` of latents ``z = f(x)`` ``[batch, D]`` (`latents`), for callers
        that score the same images against several posteriors without running the flow again."""
        z = tf.cast(z, tf.float64)[:, None, :]
        return tf.reduce_sum(self._predictive(self.posterior()).log_prob(z), axis=-1)

    def classify(self, images):
        """``class_ids`` and ``log_probs`` (`class_log_probs`) of ``images``."""
        log_probs = self.class_log_probs(images)
        return {
            "class_ids": tf.argmax(log_probs, axis=-1),
            "log_probs": tf.cast(log_probs, tf.float32),
        }

    def call(self, images, training=False):
        return self.class_log_probs(images)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        log_probs = self.class_log_probs(x)
        if self.num_classes == 1 or y is None:
            own = log_probs[:, 0]
        else:
            y = tf.cast(tf.reshape(y, [-1]), tf.int64)
            self.accuracy_tracker.update_state(y, tf.cast(log_probs, tf.float32))
            own = tf.gather(log_probs, y, axis=1, batch_dims=1)
        self.log_prob_tracker.update_state(tf.cast(own, tf.float32))
        return {m.name: m.result() for m in self.metrics}

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.classify(x)

    # Sampling.

    def _decode(self, z):
        z = tf.reshape(tf.cast(z, tf.float32), [-1, *self.latent_shape])
        return tf.clip_by_value(tf.cast(self.flow.decode(z), tf.float32), 0.0, 1.0)

    def _latents(self, class_ids, temperature, seed):
        posterior = self.posterior()
        mean = tf.gather(posterior["mean"], class_ids)
        scale = tf.gather(posterior["scale"], class_ids)
        if self.variance == "fixed":
            eps = tf.cast(standard_normal(tf.shape(mean), seed), tf.float64)
        else:
            unit = tfd.StudentT(tf.gather(posterior["df"], class_ids), 0.0, 1.0)
            eps = unit.sample(seed=tfp_seed(seed))
        return mean + tf.cast(temperature, tf.float64) * scale * eps

    def sample_latents(self, num_samples, temperature=1.0, seed=None, class_id=0):
        """``z* = m_n + T scale eps`` ``[num_samples, D]`` float64: draws of class
        ``class_id``'s posterior predictive, its spread times ``temperature``. ``seed``: None (a
        fresh draw), an int (stateful: a new draw each call, fixed by the global seed) or a
        shape-[2] stateless seed (the same draw every call), as TensorFlow and TFP read seeds."""
        if not 0 <= int(class_id) < self.num_classes:
            raise ValueError(f"class_id must be in 0 .. {self.num_classes - 1}, got {class_id}.")
        num_samples, temperature = sampling_arguments(num_samples, temperature)
        class_ids = tf.fill([num_samples], tf.constant(int(class_id), tf.int64))
        return self._latents(class_ids, temperature, seed)

    def sample(self, num_samples, temperature=1.0, seed=None, class_id=0):
        """Images in ``[0, 1]``: `sample_latents` decoded by the flow."""
        return self._decode(self.sample_latents(num_samples, temperature, seed, class_id))

    def sample_and_log_prob(self, num_samples, temperature=1.0, seed=None, class_id=0):
        """``(x, log p(x | class))``: `sample`'s draws before clipping, with their density under
        class ``class_id``'s posterior predictive carried through the flow, from the one
        forward pass (nats, float32):

        ```none
        z* ~ predictive(class_id, temperature),   x = f^{-1}(z*),
        log p(x | class) = log predictive(z*) - log|det dx/dz*|
        ```

        Needs a flow with ``decode_with_log_det`` (zoo flows; SavedModels exported by zoo).
        """
        if not hasattr(self.flow, "decode_with_log_det"):
            raise TypeError(f"{type(self.flow).__name__} gives no decode log-det to score with.")
        z = self.sample_latents(num_samples, temperature, seed, class_id)
        x, log_det = self.flow.decode_with_log_det(
            tf.reshape(tf.cast(z, tf.float32), [-1, *self.latent_shape])
        )
        posterior = {k: v[int(class_id)] for k, v in self.posterior().items()}
        latent = tf.reduce_sum(self._predictive(posterior).log_prob(z), axis=-1)
        return tf.cast(x, tf.float32), tf.cast(latent, tf.float32) - tf.cast(log_det, tf.float32)

    def interpolate(self, start="prior", end=0, steps=8, temperature=0.0, seed=None):
        """Images decoded along a straight path of predictives, from ``start`` to ``end``
        (``"prior"`` or a class id): mean and scale move linearly, one normal noise draw
        shared by the path."""
        posterior, prior = self.posterior(), self.prior()

        def ends(which):
            if which == "prior":
                return prior["mean"][0], prior["scale"][0]
            return posterior["mean"][int(which)], posterior["scale"][int(which)]

        (m0, s0), (m1, s1) = ends(start), ends(end)
        eps = tf.cast(standard_normal([1, m0.shape[0]], seed), tf.float64)
        t = tf.linspace(tf.constant(0.0, tf.float64), 1.0, int(steps))[:, None]
        z = (1 - t) * m0 + t * m1 + temperature * ((1 - t) * s0 + t * s1) * eps
        return self._decode(z)

    # What the shared paths ask.

    def headline(self, results):
        keys = ("accuracy", "latent_log_prob") if self.num_classes > 1 else ("latent_log_prob",)
        return {f"held_out_{k}": round(float(results[k]), 4) for k in keys}

    def write_artifacts(self, out, data, seed=0, temperature=0.8):
        """``samples.png`` (8 per class) and ``interpolation.png`` (prior -> class 0 [-> 1]),
        the latter at half the temperature so that the path shows the means."""
        rows = [
            self.sample(8, temperature, seed=[seed, c], class_id=c) for c in range(self.num_classes)
        ]
        title = f"Transflow samples, T = {temperature}, strength {self.strength}"
        plots.sample_grid(tf.concat(rows, 0), os.path.join(out, "samples.png"), title, columns=8)
        strip = [self.interpolate("prior", 0, 8, temperature / 2, seed=[seed, 99])]
        if self.num_classes > 1:
            strip.append(self.interpolate(0, 1, 8, temperature / 2, seed=[seed, 99]))
        plots.sample_grid(
            tf.concat(strip, 0),
            os.path.join(out, "interpolation.png"),
            "prior -> class 0" + (" / class 0 -> class 1" if self.num_classes > 1 else ""),
            columns=8,
        )
        written = ["samples.png", "interpolation.png"]
        if self.num_classes > 1:
            plots.held_out_confusion(
                data,
                lambda images: self.classify(images)["class_ids"],
                os.path.join(out, "confusion_matrix.png"),
                [str(c) for c in self.class_labels],
                "Transflow",
            )
            written.append("confusion_matrix.png")
        return written

    def serving_endpoints(self):
        """``classify`` (also ``serving_default``): ``images`` ``[batch, H, W, C]`` in ``[0, 1]``
        -> ``class_ids``, ``log_probs`` ``[batch, num_classes]``; ``sample``: ``class_ids``
        ``[batch]`` int64 (one image each), ``temperature`` scalar, ``seed`` ``[2]`` int64 ->
        ``images``."""
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        class_ids = tf.TensorSpec([None], tf.int64, name="class_ids")
        temperature = tf.TensorSpec([], tf.float32, name="temperature")
        seed = tf.TensorSpec([2], tf.int64, name="seed")

        def sample(class_ids, temperature, seed):
            message = f"class_ids must be in 0 .. {self.num_classes - 1}"
            checks = [
                tf.debugging.assert_non_negative(class_ids, message),
                tf.debugging.assert_less(
                    class_ids, tf.constant(self.num_classes, tf.int64), message
                ),
            ]
            with tf.control_dependencies(checks):
                class_ids = tf.identity(class_ids)
            return {"images": self._decode(self._latents(class_ids, temperature, seed))}

        return {
            "classify": (self.classify, [images]),
            "sample": (sample, [class_ids, temperature, seed]),
        }

    def export_resources(self):
        """What the export must track beyond the model: a SavedModel flow's functions."""
        return [self.flow.loaded] if isinstance(self.flow, SavedModelFlow) else []

    def check_data(self, info):
        if tuple(info.image_shape) != self.image_shape:
            raise ValueError(
                f"The flow takes images {list(self.image_shape)}; {info.name} has "
                f"{list(info.image_shape)}."
            )

    def get_config(self):
        flow = self.flow_path or json.loads(
            json.dumps(keras.saving.serialize_keras_object(self.flow))
        )
        return {
            **self.base_config(),
            "flow": flow,
            "num_classes": self.num_classes,
            "strength": self.strength,
            "variance": self.variance,
            "class_labels": self.class_labels,
        }
