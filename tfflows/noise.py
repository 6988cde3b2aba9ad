"""Noise for train and test steps that checkpoints, resumes and differs between replicas."""

import tensorflow as tf


def step_seed(generator):
    """A stateless seed for one step's noise, from ``generator`` (a `keras.random.SeedGenerator`
    the model owns).

    Keras keeps the generator's state in a variable, which a checkpoint saves, so a resumed run
    draws what the uninterrupted run would have drawn (TensorFlow's stateful ``tf.random`` ops
    restart their sequences whenever a function is traced again). Each replica of a
    `tf.distribute` strategy folds in its id: replicas draw different noise.
    """
    seed = generator.next()
    context = tf.distribute.get_replica_context()
    if context is not None and tf.distribute.get_strategy().num_replicas_in_sync > 1:
        seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
    return seed
