"""The zoo's default optimizer: Keras' Adam with one fused update kernel per variable, and a
weight average that can skip steps."""

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

    ``ema_every=k`` (with ``use_ema``) updates Keras' weight average every ``k``-th step with
    momentum ``ema_momentum ** k``:

    ```none
    a <- w_0                                          (step 0)
    a <- m^k a + (1 - m^k) w_t      when t % k == 0   (else a is left as it is)
    ```

    the same time constant, ``1 / (1 - m)`` steps, measured on every ``k``-th weight. Keras
    updates it every step, with temporaries the size of the weights; on NICE's CPU step (19.2M
    weights, batch 200) that costs 17 ms a step, as much as the fused Adam update, and ``k=10``
    costs 2 ms (bench/train_step.py). The average is up to ``k - 1`` steps old; for ``k`` much
    below the time constant this changes it by less than its own step-to-step drift.
    """

    def __init__(self, *args, ema_every=1, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(ema_every, bool) or not isinstance(ema_every, int) or ema_every < 1:
            raise ValueError(f"ema_every must be a whole number >= 1, got {ema_every!r}.")
        self.ema_every = ema_every

    def get_config(self):
        return {**super().get_config(), "ema_every": self.ema_every}

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema or self.ema_every == 1:
            return super()._update_model_variables_moving_average(trainable_variables)

        def update():
            momentum = tf.where(
                tf.equal(self.iterations, 0), 0.0, float(self.ema_momentum) ** self.ema_every
            )
            for variable, average in zip(
                trainable_variables, self._model_variables_moving_average, strict=True
            ):
                if average is not None:
                    rate = tf.cast(1.0 - momentum, average.dtype)
                    average.assign_sub(rate * (average - tf.cast(variable, average.dtype)))

        keras.ops.cond(tf.equal(self.iterations % self.ema_every, 0), update, lambda: None)

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
