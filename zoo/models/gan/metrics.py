"""Offline sample-quality figures for generative models, in a classifier's feature space.

The Frechet Inception Distance needs an ImageNet Inception network, which cannot be downloaded
here and does not fit 8x8 or 28x28 digits anyway. The same statistic is computed instead in the
feature space of a small classifier the zoo trains on the same data (`FeatureClassifier`), so it
is named for what it is: the *classifier-Frechet distance*,

```none
d^2 = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2})
```

with ``mu``, ``S`` the mean and covariance of the features of real and generated images. Its
scale depends on the classifier: compare figures measured with the same one only.

Mode coverage counts the classes the classifier assigns to generated images: how many classes
get at least one sample, and ``KL(p_gen || p_ref)`` between the generated class histogram and a
reference one (the classifier's histogram of real images, or uniform for Stacked MNIST).
"""

import keras
import numpy as np
import tensorflow as tf


def _sqrtm_psd(matrix):
    values, vectors = tf.linalg.eigh(matrix)
    root = tf.sqrt(tf.maximum(values, 0.0))
    return (vectors * root[None, :]) @ tf.transpose(vectors)


def frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """Squared Frechet distance between Gaussians ``N(mean_a, cov_a)`` and ``N(mean_b, cov_b)``.

    ``Tr((S_a S_b)^{1/2}) = sum_i sqrt(lambda_i)`` with ``lambda`` the eigenvalues of the
    symmetric ``S_a^{1/2} S_b S_a^{1/2}``, which has the same spectrum as ``S_a S_b``.
    """
    mean_a, cov_a, mean_b, cov_b = (tf.cast(t, tf.float64) for t in (mean_a, cov_a, mean_b, cov_b))
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = 0.5 * (middle + tf.transpose(middle))
    trace_root = tf.reduce_sum(tf.sqrt(tf.maximum(tf.linalg.eigvalsh(middle), 0.0)))
    diff = mean_a - mean_b
    return (
        tf.reduce_sum(diff * diff)
        + tf.linalg.trace(cov_a)
        + tf.linalg.trace(cov_b)
        - 2.0 * trace_root
    )


class FrechetDistance(keras.metrics.Metric):
    """Streaming classifier-Frechet distance: ``update_state(real_features, fake_features)``
    accumulates sums and outer products (float64), ``result()`` is ``d^2`` of the two sets."""

    def __init__(self, feature_dim, name="frechet_distance", **kwargs):
        super().__init__(name=name, dtype="float64", **kwargs)
        self.feature_dim = int(feature_dim)
        d = self.feature_dim
        self._state = {}
        for side in ("real", "fake"):
            self._state[side] = (
                self.add_variable((), initializer="zeros", dtype="float64", name=f"{side}_n"),
                self.add_variable((d,), initializer="zeros", dtype="float64", name=f"{side}_s"),
                self.add_variable((d, d), initializer="zeros", dtype="float64", name=f"{side}_o"),
            )

    def update_state(self, real_features, fake_features, sample_weight=None):
        for side, features in (("real", real_features), ("fake", fake_features)):
            f = tf.cast(tf.reshape(features, [-1, self.feature_dim]), tf.float64)
            n, s, o = self._state[side]
            n.assign_add(tf.cast(tf.shape(f)[0], tf.float64))
            s.assign_add(tf.reduce_sum(f, 0))
            o.assign_add(tf.matmul(f, f, transpose_a=True))

    def _moments(self, side):
        n, s, o = self._state[side]
        mean = s / tf.maximum(n, 1.0)
        cov = (o - n * mean[:, None] * mean[None, :]) / tf.maximum(n - 1.0, 1.0)
        return mean, cov

    def result(self):
        return frechet_distance(*self._moments("real"), *self._moments("fake"))

    def get_config(self):
        return {**super().get_config(), "feature_dim": self.feature_dim}


class ModeCoverage(keras.metrics.Metric):
    """Histograms of class ids of generated and reference images.

    ``result()`` is ``{"classes_covered": classes with >= 1 generated image, "class_kl":
    KL(p_gen || p_ref)}``; the reference histogram is floored at ``1e-6`` so that a class the
    reference lacks costs a finite, large amount.
    """

    def __init__(self, num_classes, name="mode_coverage", **kwargs):
        super().__init__(name=name, dtype="float64", **kwargs)
        self.num_classes = int(num_classes)
        self.generated = self.add_variable(
            (self.num_classes,), initializer="zeros", dtype="float64", name="generated"
        )
        self.reference = self.add_variable(
            (self.num_classes,), initializer="zeros", dtype="float64", name="reference"
        )

    def update_state(self, generated_classes, reference_classes, sample_weight=None):
        pairs = ((self.generated, generated_classes), (self.reference, reference_classes))
        for counts, classes in pairs:
            onehot = tf.one_hot(tf.reshape(classes, [-1]), self.num_classes, dtype=tf.float64)
            counts.assign_add(tf.reduce_sum(onehot, 0))

    def result(self):
        return {
            "classes_covered": tf.reduce_sum(tf.cast(self.generated > 0, tf.float64)),
            "class_kl": class_kl(self.generated, self.reference),
        }

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def class_kl(generated_counts, reference_counts):
    """``KL(p_gen || p_ref)`` of two class histograms (counts), reference floored at 1e-6."""
    p = tf.cast(generated_counts, tf.float64)
    q = tf.cast(reference_counts, tf.float64)
    p = p / tf.maximum(tf.reduce_sum(p), 1.0)
    q = tf.maximum(q / tf.maximum(tf.reduce_sum(q), 1.0), 1e-6)
    return tf.reduce_sum(tf.where(p > 0, p * tf.math.log(tf.maximum(p, 1e-300) / q), 0.0))


def sample_figures(classifier, generated, reference, reference_hist=None, batch_size=500):
    """Classifier-Frechet distance and mode coverage of image sets (``[N, H, W, C]`` in [0, 1]).

    Returns ``{"frechet_distance", "classes_covered", "class_kl"}``; ``reference_hist`` (class
    probabilities) replaces the classifier's histogram of ``reference`` when given.
    """
    fd = FrechetDistance(classifier.feature_dim)
    coverage = ModeCoverage(classifier.num_classes)
    for start in range(0, max(len(generated), len(reference)), batch_size):
        real = np.asarray(reference[start : start + batch_size])
        fake = np.asarray(generated[start : start + batch_size])
        real_f = classifier.features(real) if len(real) else tf.zeros([0, fd.feature_dim])
        fake_f = classifier.features(fake) if len(fake) else tf.zeros([0, fd.feature_dim])
        fd.update_state(real_f, fake_f)
        coverage.update_state(
            classifier.predict_classes(fake) if len(fake) else tf.zeros([0], tf.int64),
            classifier.predict_classes(real) if len(real) else tf.zeros([0], tf.int64),
        )
    figures = {k: float(v) for k, v in coverage.result().items()}
    if reference_hist is not None:
        figures["class_kl"] = float(class_kl(coverage.generated, reference_hist))
    return {"frechet_distance": float(fd.result()), **figures}
