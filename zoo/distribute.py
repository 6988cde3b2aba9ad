"""The ``tf.distribute`` strategy of a training run: one device, all local GPUs (``mirrored``),
or several machines (``multi-worker``, from ``TF_CONFIG``).

``multi-worker`` is ``tf.distribute.MultiWorkerMirroredStrategy``: every worker runs the same
command; ``TF_CONFIG`` names the cluster and this worker's place in it, e.g. on the second of
two machines::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 1}}' zoo train realnvp --strategy multi-worker

Worker 0 (the chief) writes the run folder; the others write only their ``worker-N.json``
(the held-out figures and a digest of their weights) there, so that a shared folder shows they
agree. Each worker reads the whole dataset and keeps its share of every global batch
(``AutoShardPolicy.DATA``), so that the workers step in lockstep.

Keras 3 (up to 3.15 at least, keras-team/keras#20585) cannot ``fit`` under this strategy: its
``reduce_per_replica`` reduces the per-step scalar logs with ``strategy.reduce("MEAN", v,
axis=0)``, which fails on a scalar ("Invalid reduction dimension 0 for input with 0
dimensions"). `patch_keras_multi_worker_logs` reduces them with ``axis=None`` instead; nothing
else in ``fit`` needs changing.
"""

import json
import os

STRATEGIES = ("none", "mirrored", "multi-worker")


def patch_keras_multi_worker_logs():
    """Works around keras-team/keras#20585 (see the module docstring); idempotent."""
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "zoo_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.zoo_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def make_strategy(name):
    """The strategy called ``name`` (one of `STRATEGIES`); ``multi-worker`` must be made before
    TensorFlow runs any op in this process, and needs ``TF_CONFIG``."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}.")
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    if not config.get("cluster", {}).get("worker"):
        raise ValueError(
            "strategy 'multi-worker' needs TF_CONFIG naming the cluster and this worker, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
            '"worker", "index": 0}}.'
        )
    patch_keras_multi_worker_logs()
    communication = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=communication)


def is_chief(strategy):
    """Whether this process writes the run's files: always, but for a multi-worker
    strategy's workers other than 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode", bool)():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def shard_by_data(dataset):
    """``dataset`` with ``AutoShardPolicy.DATA``: every worker reads it all and keeps its share
    of each batch (in-memory sources have no files to split)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
