"""Value checks that raise clear errors instead of producing wrong numbers.

Shape checks are static and live beside the layers (``base.check_example_shape``).
The checks here look at values, so they must run in whatever mode the backend
executes in:

* eagerly (any backend): the values are read and a ``ValueError`` is raised
  with the tensor's name, the expected and the received range;
* inside a TensorFlow graph (``model.fit`` on the TensorFlow backend): a
  ``tf.debugging`` assertion carries the same message and raises
  ``InvalidArgumentError`` when the step runs;
* inside a JAX trace (``jit``): values are not available while tracing, so the
  check is skipped; data pipelines validated eagerly (or under TensorFlow)
  are the guard there. This is documented in docs/ARCHITECTURE.md.
"""

import keras
import numpy as np
from keras import ops


def _is_symbolic(x):
    backend = keras.backend.backend()
    if isinstance(x, keras.KerasTensor):
        return True
    if backend == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


def _tf_graph_mode():
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.executing_eagerly()


def is_eager(x):
    """True when ``x`` holds concrete values that Python can read now."""
    return not _is_symbolic(x) and not _tf_graph_mode()


def _tf_assert(condition, message):
    import tensorflow as tf

    return tf.debugging.Assert(condition, [message])


def check_finite(x, tensor_name, owner):
    """Raises if ``x`` has NaN or infinite entries.

    Args:
        x: a floating tensor (integer tensors always pass).
        tensor_name: name of the tensor for the message.
        owner: layer or model name for the message.

    Returns:
        ``x``; inside a TensorFlow graph, an identity of ``x`` that depends on
        the assertion. Callers must use the returned tensor, or nothing
        downstream waits for the check.
    """
    if _is_symbolic(x) or "int" in str(x.dtype) or "bool" in str(x.dtype):
        return x
    if _tf_graph_mode():
        import tensorflow as tf

        message = f"{owner}: `{tensor_name}` contains NaN or infinite values; clean the input first."
        with tf.control_dependencies([_tf_assert(tf.reduce_all(tf.math.is_finite(x)), message)]):
            return tf.identity(x)
    values = ops.convert_to_numpy(x)
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(
            f"{owner}: `{tensor_name}` contains {bad} NaN or infinite value(s) out of "
            f"{np.size(values)}; clean or drop those examples before calling the model."
        )
    return x


def check_integer_range(x, low, high, tensor_name, owner, hint=""):
    """Raises unless every entry of ``x`` is a whole number in ``[low, high]``.

    Args:
        x: tensor of pixel values (integer or floating dtype).
        low: smallest allowed value.
        high: largest allowed value.
        tensor_name: name of the tensor for the message.
        owner: layer or model name for the message.
        hint: extra advice appended to the message.

    Returns:
        ``x`` (gated on the check inside a TensorFlow graph; use the result).
    """
    if _is_symbolic(x):
        return x
    message = f"{owner}: `{tensor_name}` must hold whole numbers in [{low}, {high}]; {hint}".rstrip().rstrip(";")
    if _tf_graph_mode():
        import tensorflow as tf

        xf = tf.cast(x, tf.float32)
        ok = tf.logical_and(
            tf.reduce_all(tf.logical_and(xf >= low, xf <= high)),
            tf.reduce_all(tf.equal(xf, tf.floor(xf))),
        )
        with tf.control_dependencies([_tf_assert(ok, message + " Received values out of range or with fractional parts.")]):
            return tf.identity(x)
    values = ops.convert_to_numpy(x).astype(np.float64)
    if values.size == 0:
        return x
    if not np.all(np.isfinite(values)):
        check_finite(x, tensor_name, owner)
    vmin, vmax = float(values.min()), float(values.max())
    if vmin < low or vmax > high:
        raise ValueError(f"{message} Received values in [{vmin:g}, {vmax:g}].")
    if not np.all(values == np.floor(values)):
        raise ValueError(
            f"{message} Received non-integer values (e.g. {values[values != np.floor(values)].flat[0]:g})"
            + ("; images already scaled to [0, 1] must be passed as uint8 pixels instead." if high == 255 else ".")
        )
    return x


def check_value_range(x, low, high, tensor_name, owner, hint=""):
    """Raises unless every entry of the float tensor ``x`` lies in ``[low, high]`` (the data contract's range).

    Returns:
        ``x`` (gated on the check inside a TensorFlow graph; use the result).
    """
    if _is_symbolic(x):
        return x
    message = f"{owner}: `{tensor_name}` must lie in [{low:g}, {high:g}]; {hint}".rstrip()
    if _tf_graph_mode():
        import tensorflow as tf

        xf = tf.cast(x, tf.float32)
        ok = tf.reduce_all(tf.logical_and(xf >= low, xf <= high))
        with tf.control_dependencies([_tf_assert(ok, message + " Received values outside that range.")]):
            return tf.identity(x)
    values = ops.convert_to_numpy(x)
    if values.size and (float(values.min()) < low or float(values.max()) > high):
        raise ValueError(f"{message} Received values in [{float(values.min()):g}, {float(values.max()):g}].")
    return x


def check_labels(labels, num_classes, owner, batch_size=None):
    """Class labels for a class-conditional model: integer class indices of shape ``(batch,)`` in ``[0, K)``.

    Refused with a ``ValueError`` that names the fix: float or boolean
    labels (a float array may hold scores, not classes), one-hot or
    ``(batch, 1)`` arrays (which axis is the class is ambiguous), a length
    other than the batch's, and indices outside ``[0, num_classes)``. Values
    are checked eagerly and, inside a TensorFlow graph, by an assertion that
    gates the result (skipped inside a JAX trace, as the other value checks).

    Args:
        labels: integer tensor or array of shape ``(batch,)``.
        num_classes: int ``K``.
        owner: model or layer name for the message.
        batch_size: int or None; the length the labels must have.

    Returns:
        The labels as an int32 tensor (gated on the range check in a graph).
    """
    if labels is None:
        raise ValueError(f"{owner} is class-conditional ({num_classes} classes) and needs `labels`: integer class "
                         f"indices in [0, {num_classes - 1}], one per example.")
    if isinstance(labels, (list, tuple)) or np.isscalar(labels):
        labels = np.asarray(labels)
    dtype = keras.backend.standardize_dtype(labels.dtype)
    if not ("int" in dtype):
        raise ValueError(f"{owner}: `labels` must be integer class indices in [0, {num_classes - 1}]; received dtype "
                         f"{dtype}. Convert with `labels.astype('int32')` (one-hot or probability rows: "
                         "`labels.argmax(-1)`).")
    shape = tuple(labels.shape)
    if len(shape) != 1:
        raise ValueError(f"{owner}: `labels` must have shape (batch,), one class index per example; received shape "
                         f"{shape}. (batch, 1) arrays: `labels.reshape(-1)`; one-hot rows: `labels.argmax(-1)`.")
    if batch_size is not None and shape[0] is not None and int(shape[0]) != int(batch_size):
        raise ValueError(f"{owner}: got {shape[0]} labels for {batch_size} examples; pass one label per example.")
    if _is_symbolic(labels):
        return ops.cast(labels, "int32")
    message = f"{owner}: `labels` must be class indices in [0, {num_classes - 1}]"
    if _tf_graph_mode():
        import tensorflow as tf

        ok = tf.reduce_all(tf.logical_and(labels >= 0, labels < num_classes))
        with tf.control_dependencies([_tf_assert(ok, message + "; received an index out of range.")]):
            return tf.cast(tf.identity(labels), tf.int32)
    values = np.asarray(ops.convert_to_numpy(labels))
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"{message}; received values in [{values.min()}, {values.max()}].")
    return ops.convert_to_tensor(values.astype("int32"))
