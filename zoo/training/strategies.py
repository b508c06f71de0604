"""tf.distribute strategies by name, and which worker writes files."""




STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name="default", devices=None, tpu_address=None):
    """A ``tf.distribute.Strategy`` by name.

    Args:
        name: ``"default"`` (no distribution: the current default strategy),
            ``"mirrored"`` (all local GPUs, or ``devices``), ``"multi_worker"``
            (``MultiWorkerMirroredStrategy``; the cluster comes from the
            ``TF_CONFIG`` environment variable) or ``"tpu"`` (``TPUStrategy``
            on the TPU at ``tpu_address``, ``""`` for the local one).
        devices: device names for ``"mirrored"`` (e.g. ``["/cpu:0", "/cpu:1"]``).
        tpu_address: TPU name or ``grpc://`` address for ``"tpu"``.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if devices:
            raise ValueError("`devices` applies to the 'mirrored' strategy; multi_worker reads TF_CONFIG.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")


def is_chief(strategy):
    """True on the worker that writes files (every strategy but multi-worker has only one)."""
    resolver = getattr(getattr(strategy, "extended", None), "_cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0)
