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
dimensions"); and before training it averages a first data batch over the workers to build the
model symbolically, which fails on integer labels ("Attempt to convert a value (PerReplica:
..."). `patch_keras_for_multi_worker` reduces the logs with ``axis=None`` and builds from this
worker's own first batch instead; nothing else in ``fit`` needs changing.
"""

import hashlib
import json
import os

STRATEGIES = ("none", "mirrored", "multi-worker")


def patch_keras_for_multi_worker():
    """Works around keras-team/keras#20585 (see the module docstring); idempotent."""
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "zoo_patched", False):
        return
    original_reduce = trainer.reduce_per_replica
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    multi_worker = trainer._collective_all_reduce_multi_worker

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or not multi_worker(strategy):
            return original_build(self, iterator, data_batch)
        for _, _, it in iterator:
            data_batch = tree.map_structure(
                lambda v: (
                    strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                next(it),
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    reduce_per_replica.zoo_patched = True
    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build


_MADE = {}


def make_strategy(name):
    """The strategy called ``name`` (one of `STRATEGIES`; ``none``: the current one); made once
    per process. ``multi-worker`` must be made before TensorFlow runs any op in this process,
    and needs ``TF_CONFIG``."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}.")
    if name == "none":
        return tf.distribute.get_strategy()
    if name not in _MADE:
        _MADE[name] = _make(name)
    return _MADE[name]


def _make(name):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    if not config.get("cluster", {}).get("worker"):
        raise ValueError(
            "strategy 'multi-worker' needs TF_CONFIG naming the cluster and this worker, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
            '"worker", "index": 0}}.'
        )
    patch_keras_for_multi_worker()
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


def write_worker_report(strategy, model, results, folder):
    """Writes ``folder/worker-N.json``: this worker's held-out ``results`` and a digest of its
    weights (equal on every worker when they trained in lockstep); returns that dict."""
    resolver = strategy.cluster_resolver
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    report = {
        "task": f"{resolver.task_type}:{resolver.task_id}",
        "workers": strategy.extended._num_workers,
        "held_out": {k: float(v) for k, v in results.items()},
        "weights_sha256": digest.hexdigest(),
    }
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"worker-{resolver.task_id}.json")
    with open(f"{path}.tmp", "w") as f:
        json.dump(report, f, indent=2)
    os.replace(f"{path}.tmp", path)
    return report


def shard_by_data(dataset):
    """``dataset`` with ``AutoShardPolicy.DATA``: every worker reads it all and keeps its share
    of each batch (in-memory sources have no files to split)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
