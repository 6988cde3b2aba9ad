"""The gradient step every custom ``train_step`` shares: replica- and loss-scaled, and never
applied when the loss or a gradient is not finite. Public (``tfflows.minimize`` and the rest):
`Flow`'s step is built from these, and so is any Keras model's custom ``train_step`` that wants
the same guarantees (the zoo's GAN, autoencoders and classifiers)::

    def train_step(self, data):
        def loss_fn():
            per_example = ...                        # float32, one value per example
            return weighted_mean(per_example, sample_weight)[0], per_example

        loss, per_example, applied = minimize(self.optimizer, self.trainable_weights, loss_fn)
        record_step(applied, self.skipped_steps, lambda: update_my_metrics(per_example))

with ``self.skipped_steps = skipped_steps_metric()`` among the model's metrics, and
``build_optimizer(self)`` at the start of its ``fit`` (the step then traces once).
"""

import keras
import tensorflow as tf


def all_finite(tensors):
    """A scalar bool: every element of every (non-None) tensor in ``tensors`` is finite.

    A NaN or an infinity makes its tensor's sum non-finite, so the sums answer in one read of
    each tensor (``is_finite`` then ``reduce_all`` write and read a mask as well: on NICE's 19M
    gradients, twice the time). Only when a sum is not finite are the elements checked one by
    one, since finite elements can overflow a sum too.
    """
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return tf.constant(True)
    sums = tf.stack([tf.cast(tf.reduce_sum(t), tf.float32) for t in tensors])

    def elementwise():
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in tensors]))

    return tf.cond(tf.reduce_all(tf.math.is_finite(sums)), lambda: tf.constant(True), elementwise)


def minimize(optimizer, variables, loss_fn, state=(), when=True):
    """Takes one optimizer step on ``variables`` down the gradient of ``loss_fn()``, unless the
    loss or a gradient is not finite: then nothing changes.

    ``loss_fn`` returns ``(loss, aux)``: ``loss`` the per-replica mean objective (a float32
    scalar), ``aux`` anything the caller wants back (e.g. per-example log-probs for metrics).
    The loss is divided by the number of replicas, since a `tf.distribute` strategy sums
    gradients across replicas: the step then follows the global-batch mean. It is multiplied by
    the loss scale of a ``keras.optimizers.LossScaleOptimizer`` (``optimizer.scale_loss``; a no-op
    for other optimizers), which unscales the gradients.

    A step is skipped when the loss or any gradient has a NaN or an infinity on any replica:
    neither the variables nor the optimizer's state (moments, iteration count) change, and the
    ``state`` variables (e.g. batch-norm moving statistics that the forward pass assigned) are
    put back as they were. ``when`` False (a scalar bool tensor) skips the step as well, e.g. a
    GAN's generator step after a skipped discriminator step. A ``LossScaleOptimizer`` makes the
    same decision itself, and also halves its scale, so an overflowing float16 step is skipped
    the same way; a step skipped by ``when`` alone leaves its scale as it was.

    Returns ``(loss, aux, applied)``, ``applied`` a scalar bool, the same on every replica.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    before = [tf.identity(v) for v in state]
    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
        scaled = optimizer.scale_loss(loss / replicas)
    grads = tape.gradient(scaled, variables)
    finite = all_replicas(all_finite([loss, *grads]))
    applied = tf.logical_and(finite, when)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        # It skips non-finite gradients and lowers its scale; a non-finite loss must count as
        # an overflow too. A step not wanted (``when`` False) leaves its scale alone.
        grads = [tf.where(finite, g, float("nan")) if g is not None else g for g in grads]
        _apply_if(optimizer, when, grads, variables)
    else:
        _apply_if(optimizer, applied, grads, variables)
    for variable, value in zip(state, before, strict=True):
        variable.assign(tf.where(applied, variable, value))
    return loss, aux, applied


def build_optimizer(model):
    """Builds ``model.optimizer`` on ``model.trainable_variables`` now, eagerly, in the model's
    distribution scope, when it is not built yet and every layer of the model is.

    Call it at the start of ``fit``. Keras builds the optimizer before tracing only under a
    distribution strategy; otherwise `minimize` builds it inside the first trace of the train
    step, where each slot variable's initializer becomes a ``tf.cond`` and ``tf.function``
    traces the step a second time (variables created on its first call). Built before, the
    step is traced once: the first ``fit`` of a small multi-scale RealNVP takes 4.6 s instead
    of 8.4 s. A model whose layers are not all built yet (their variables come with the first
    call) keeps the lazy build; so does a model with its own optimizers (e.g. a GAN's two,
    built in its ``compile``).
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or optimizer.built:
        return
    if not all(layer.built for layer in model._flatten_layers()):
        return
    with model.distribute_strategy.scope():
        optimizer.build(model.trainable_variables)


def all_replicas(flag):
    """``flag`` and-ed over all replicas (every replica then takes the same branch)."""
    context = tf.distribute.get_replica_context()
    if context is None or tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return flag
    failures = context.all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(flag, tf.float32))
    return failures < 0.5


def _apply_if(optimizer, applied, grads, variables):
    """``optimizer.apply(grads, variables)`` when ``applied``, as Keras' LossScaleOptimizer does
    it: a strategy that updates through ``merge_call`` (e.g. ``MirroredStrategy``) must branch in
    its cross-replica context."""
    if not optimizer.built:
        optimizer.build(variables)

    def apply(grads):
        optimizer.apply(grads, variables)

    if applied is True:
        apply(grads)
        return

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(applied, lambda: apply(grads), lambda: None)
        return

    def cross_replica(strategy, applied, grads):
        def apply_everywhere():
            strategy.extended.call_for_each_replica(apply, args=(grads,))

        tf.cond(strategy.experimental_local_results(applied)[0], apply_everywhere, lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(applied, grads))


def skipped_steps_metric():
    """The ``skipped_steps`` count a train step reports (see `record_step`)."""
    return keras.metrics.Sum(name="skipped_steps")


def record_step(applied, skipped_steps, update_metrics):
    """Counts a skipped step in ``skipped_steps``; calls ``update_metrics()`` (the step's metric
    updates) only when the step was applied, so that an epoch's training figures are those of
    the steps taken."""
    # Replicas' updates are summed: each adds its share.
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    skipped_steps.update_state((1.0 - tf.cast(applied, tf.float32)) / replicas)

    def update():
        update_metrics()

    tf.cond(applied, update, lambda: None)


def weighted_mean(values, sample_weight):
    """``(mean, total weight)`` of per-example ``values``; weight 1 each by default.

    Metrics update with ``(mean, sample_weight=total)`` so that each batch counts by its number
    of examples: an epoch's figure is then the per-example mean whatever the batch size.
    """
    if sample_weight is None:
        w = tf.ones_like(values)
    else:
        w = tf.cast(tf.reshape(sample_weight, tf.shape(values)), values.dtype)
    total = tf.reduce_sum(w)
    return tf.reduce_sum(w * values) / tf.maximum(total, 1e-12), total
