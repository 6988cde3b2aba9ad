"""`FeatureClassifier`: the small classifier whose features judge generated images.

Trained by the zoo on the same labelled data the generative model learns, it gives the feature
space of the classifier-Frechet distance and the class ids of mode coverage
(`zoo.models.gan.metrics`). It always computes in float32, whatever the global dtype policy, so
figures do not depend on the precision the generative model trained in.
"""

import keras
import tensorflow as tf

from zoo.models.optimizers import FusedAdam


@keras.saving.register_keras_serializable(package="zoo")
class FeatureClassifier(keras.Model):
    """Conv net on images in ``[0, 1]``: three 3x3 conv stages (32, 64, 64 filters; the last
    two strided), flattened, a ``feature_dim`` ReLU layer (the features), and a
    linear layer to ``num_classes`` logits.

    Args:
      image_shape: ``(H, W, C)``.
      num_classes: number of classes.
      feature_dim: width of the feature layer (the Frechet distance's dimension).
    """

    def __init__(self, image_shape, num_classes, feature_dim=64, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.image_shape = tuple(int(n) for n in image_shape)
        self.num_classes = int(num_classes)
        self.feature_dim = int(feature_dim)
        conv = keras.layers.Conv2D
        self.body = keras.Sequential(
            [
                keras.Input(self.image_shape),
                conv(32, 3, padding="same", activation="relu", dtype="float32"),
                conv(64, 3, strides=2, padding="same", activation="relu", dtype="float32"),
                conv(64, 3, strides=2, padding="same", activation="relu", dtype="float32"),
                keras.layers.Flatten(dtype="float32"),
                keras.layers.Dense(self.feature_dim, activation="relu", dtype="float32"),
            ],
            name="features",
        )
        self.head = keras.layers.Dense(self.num_classes, dtype="float32", name="logits")
        self.head.build((None, self.feature_dim))

    def features(self, images):
        return self.body(tf.cast(images, tf.float32), training=False)

    def call(self, images, training=False):
        return self.head(self.body(tf.cast(images, tf.float32), training=training))

    def predict_classes(self, images):
        return tf.argmax(self(images), axis=-1)

    def fit_labelled(self, dataset, steps, learning_rate=2e-3, verbose=0):
        """Trains for ``steps`` batches of ``(images in [0, 1], labels)`` (``dataset`` repeats);
        returns the training accuracy over the last quarter of the steps."""
        self.compile(
            optimizer=FusedAdam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        quarter = max(int(steps) // 4, 1)
        history = self.fit(
            dataset, steps_per_epoch=quarter, epochs=4, verbose=verbose, shuffle=False
        )
        return float(history.history["accuracy"][-1])

    def get_config(self):
        return {
            "name": self.name,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "feature_dim": self.feature_dim,
        }


class ChannelwiseClassifier:
    """Judges each channel of ``[N, H, W, C]`` images with one single-channel classifier, as
    Stacked MNIST does (Metz et al., 2017; PacGAN): the class of an image is the number whose
    base-``K`` digits are its channels' classes, ``sum_c k_c K^c`` (``K^C`` classes), and its
    features are the channels' features side by side (``C * feature_dim``).

    Args:
      classifier: a trained `FeatureClassifier` for single-channel images.
      channels: number of channels ``C`` of the images to judge.
    """

    def __init__(self, classifier, channels):
        self.classifier = classifier
        self.channels = int(channels)
        self.num_classes = classifier.num_classes**self.channels
        self.feature_dim = classifier.feature_dim * self.channels

    def _per_channel(self, images, fn):
        images = tf.convert_to_tensor(images, tf.float32)
        return [fn(images[..., c : c + 1]) for c in range(self.channels)]

    def features(self, images):
        return tf.concat(self._per_channel(images, self.classifier.features), axis=-1)

    def predict_classes(self, images):
        classes = self._per_channel(images, self.classifier.predict_classes)
        k = self.classifier.num_classes
        return tf.add_n([c * k**i for i, c in enumerate(classes)])
