"""Distribution strategies by name (tf.distribute, or keras.distribution under JAX), and which worker writes files."""

import contextlib
import dataclasses

import keras

TF_STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
JAX_STRATEGIES = ("default", "data_parallel")
STRATEGIES = TF_STRATEGIES + tuple(name for name in JAX_STRATEGIES if name not in TF_STRATEGIES)


@dataclasses.dataclass
class JaxStrategy:
    """The JAX backend's counterpart of a ``tf.distribute.Strategy``: a ``keras.distribution`` (or none).

    ``scope()`` makes the distribution current (``zoo.train`` builds and fits
    the model inside it); ``num_replicas_in_sync`` is the number of devices the
    global batch is split over.
    """

    name: str
    distribution: object = None

    @property
    def num_replicas_in_sync(self):
        return 1 if self.distribution is None else len(self.distribution.device_mesh.devices.reshape(-1))

    def scope(self):
        return contextlib.nullcontext() if self.distribution is None else self.distribution.scope()


def make_strategy(name="default", devices=None, tpu_address=None):
    """A distribution strategy by name, for the running Keras backend.

    TensorFlow (``tf.distribute``):

    * ``"default"`` (no distribution: the current default strategy),
    * ``"mirrored"`` (all local GPUs, or ``devices``),
    * ``"multi_worker"`` (``MultiWorkerMirroredStrategy``; the cluster comes
      from the ``TF_CONFIG`` environment variable),
    * ``"tpu"`` (``TPUStrategy`` on the TPU at ``tpu_address``, ``""`` for the local one).

    JAX (``keras.distribution``; returns a ``JaxStrategy``):

    * ``"default"`` (one device),
    * ``"data_parallel"`` (``keras.distribution.DataParallel`` over every
      device, or ``devices``: e.g. the GPUs of one host, or the CPU split
      with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).

    Args:
        name: one of the names above.
        devices: device names for ``"mirrored"`` (e.g. ``["/cpu:0", "/cpu:1"]``)
            or ``"data_parallel"`` (e.g. ``["cpu:0", "cpu:1"]``).
        tpu_address: TPU name or ``grpc://`` address for ``"tpu"``.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)} (TensorFlow: "
                         f"{', '.join(TF_STRATEGIES)}; JAX: {', '.join(JAX_STRATEGIES)}).")
    backend = keras.backend.backend()
    if backend == "jax":
        if name not in JAX_STRATEGIES:
            raise ValueError(f"Strategy {name!r} is tf.distribute's; under KERAS_BACKEND=jax choose one of "
                             f"{', '.join(JAX_STRATEGIES)} (data_parallel splits the batch over the devices).")
        if name == "default":
            if devices:
                raise ValueError("`devices` applies to the 'data_parallel' strategy.")
            return JaxStrategy("default")
        available = keras.distribution.list_devices()
        chosen = list(devices) if devices else available
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise ValueError(f"devices {unknown} are not among this process's {available}.")
        return JaxStrategy("data_parallel", keras.distribution.DataParallel(devices=chosen))
    if name not in TF_STRATEGIES:
        raise ValueError(f"Strategy {name!r} is for KERAS_BACKEND=jax (keras.distribution); under TensorFlow choose "
                         f"one of {', '.join(TF_STRATEGIES)} ('mirrored' splits the batch over local devices).")
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


def is_chief(strategy):
    """True on the worker that writes files (every strategy but multi-worker has only one)."""
    if isinstance(strategy, JaxStrategy):
        import jax

        return jax.process_index() == 0
    resolver = getattr(getattr(strategy, "extended", None), "_cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0)
