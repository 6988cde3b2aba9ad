"""The zoo's default optimizer: Keras' Adam with one fused update kernel per variable."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, the same arithmetic, with each variable's update done by
    TensorFlow's fused ``ResourceApplyAdam`` kernel.

    At step ``t``, for a variable ``w`` with gradient ``g``:

    ```none
    m <- b1 m + (1 - b1) g
    v <- b2 v + (1 - b2) g^2
    w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    ```

    Keras writes this as about ten TensorFlow ops per variable, each a pass over memory (its
    temporaries included); the kernel reads ``w, m, v, g`` and writes ``w, m, v`` once. On a
    memory-bound CPU step with many weights this matters: see bench/train_step.py. Everything
    else (learning-rate schedules, clipping, weight decay, EMA, loss scaling, tf.distribute) is
    Keras' own. Falls back to Keras' update for ``amsgrad``, sparse gradients and backends other
    than TensorFlow.
    """

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.amsgrad
            or isinstance(gradient, tf.IndexedSlices)
            or keras.backend.backend() != "tensorflow"
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
