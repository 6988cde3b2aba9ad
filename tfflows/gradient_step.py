"""The gradient step every custom ``train_step`` shares: replica- and loss-scaled."""

import tensorflow as tf


def minimize(optimizer, variables, loss_fn):
    """Takes one optimizer step on ``variables`` down the gradient of ``loss_fn()``.

    ``loss_fn`` returns ``(loss, aux)``: ``loss`` the per-replica mean objective (a float32
    scalar), ``aux`` anything the caller wants back (e.g. per-example log-probs for metrics).
    The loss is divided by the number of replicas, since a `tf.distribute` strategy sums
    gradients across replicas: the step then follows the global-batch mean. It is multiplied by
    the loss scale of a ``keras.optimizers.LossScaleOptimizer`` (``optimizer.scale_loss``; a no-op
    for other optimizers), which unscales the gradients, and skips the update when any is not
    finite, in ``apply``.

    Returns ``(loss, aux)``.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
        scaled = optimizer.scale_loss(loss / replicas)
    optimizer.apply(tape.gradient(scaled, variables), variables)
    return loss, aux
