"""``GenerativeModel``: the one base class of every zoo model.

Every family (``FlowModel`` and its subclasses, ``DenoisingFlow``, the InjFlow /
autoencoder models) is a ``GenerativeModel``. The base class owns, written once:

* **The data contract.** ``data_kind`` says what the model takes: ``"pixels"``
  (uint8 images, quantized to ``n_bits`` inside the model) or ``"float"``
  (float32 vectors or images, within ``value_range`` when it is set).
  ``validate`` enforces it on every public entry point, ``as_model_input``
  converts a loader's uint8 images for a float-image model, ``fit`` checks the
  data's dtype before the first step.
* **One objective protocol.** ``objective_terms(x, training)`` (the family's
  hook) returns a dict of named per-example terms in nats whose sum is the
  per-example objective. ``call`` returns that dict; ``compute_loss`` is the
  (weighted) mean of the sum plus ``self.losses`` (weight penalties, also in
  nats per example), divided by ``D ln 2``: every model's loss, and therefore
  every ``val_loss``, is **its training objective in bits per dimension**
  (``LOSS_UNIT``). For likelihood-trained models it is the negative
  log-likelihood in bits/dim; ``likelihood_term`` names the term that is a
  negative log-likelihood, and where there is one the metric ``bits_per_dim``
  is logged in training and validation. Entries named in ``diagnostics`` are
  per-example quantities the family reports beside the objective (logged as
  metrics of that name, never summed into the loss); ``objective(terms)`` is
  the sum of the others. ``monitor`` names the validation log whose meaning
  does not change during training (``val_loss`` unless the objective has a
  schedule): ``zoo.train``'s best-model export and the cards' flatness check
  follow it.
* **Sampling and the latent API**, with their argument checks:
  ``sample`` = ``generate`` on seeded noise (``layers.draw_noise``),
  ``generate`` / ``decode`` through the prior and the family's
  ``latent_to_data``, ``encode`` through the family's ``data_to_latent``. An
  argument a model cannot honour (``noise_scale`` without observation noise,
  ``stochastic=True`` with a deterministic encoder) is refused, never ignored.
* ``bits_per_dim``, ``initialize`` (act-norm data initialization), ``fit``,
  ``fit_priors`` (no-op unless the model has post-hoc priors),
  ``save_to_preset`` and ``describe()`` (the facts ``zoo.train``,
  ``zoo.evaluate`` and ``export`` read; they never probe with ``hasattr``).
"""

import math
import types

import keras
import numpy as np
from keras import ops

from layers.actnorm import ActNorm
from layers.base import density_dtype, check_example_shape
from layers.checks import check_finite, check_labels, check_value_range
from layers.seeds import draw_noise

LOSS_UNIT = "bits/dim"
DATA_KINDS = ("pixels", "float")
OUTPUTS = ("uint8", "float")


def weighted_mean(values, sample_weight=None):
    """Mean of per-example ``values``, weighted by ``sample_weight`` when given (Keras's convention)."""
    if sample_weight is None:
        return ops.mean(values)
    weight = ops.cast(ops.reshape(sample_weight, (-1,)), values.dtype)
    return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1e-12)


def replica_share(loss):
    """This replica's share of the global mean loss (the ``keras.losses`` convention).

    Under a ``tf.distribute`` strategy each replica sees ``global_batch /
    replicas`` examples and the gradients of the replicas are summed, so each
    returns its mean divided by the number of replicas: the update is then the
    gradient of the mean over the global batch, and Keras's loss tracker
    (which multiplies back) reports the global mean. A no-op with one replica.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
    return loss


def first_batch(data, batch_size):
    """A batch of inputs from whatever ``fit`` was given, without consuming it."""
    if data is None:
        return None
    if hasattr(data, "element_spec") and hasattr(data, "take"):  # tf.data.Dataset
        element = next(iter(data.take(1)))
    elif isinstance(data, keras.utils.PyDataset):
        element = data[0]
    elif isinstance(data, (np.ndarray, list)) or ops.is_tensor(data):
        element = data[: max(int(batch_size or 32), 256)]
    else:
        raise TypeError(
            f"fit cannot read a first batch from a {type(data).__name__}; pass a NumPy array, a tf.data.Dataset or "
            "a keras.utils.PyDataset (or call `model.initialize(batch)` before a custom loop)."
        )
    while isinstance(element, (tuple, list)):
        element = element[0]
    if isinstance(element, dict):
        raise TypeError("zoo models take a single input tensor, not a dict of inputs.")
    return element


def _dtype_name(x):
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        dtype = np.asarray(x).dtype
    return keras.backend.standardize_dtype(dtype)


def array_input(x, name, owner):
    """A nested Python list / tuple of numbers as a NumPy array (as TFP and Keras take them); anything else unchanged.

    Lists of uneven lengths are refused by name (NumPy would make an object array or fail with its own message).
    """
    if not isinstance(x, (list, tuple)):
        return x
    try:
        array = np.asarray(x)
    except ValueError as error:
        raise ValueError(f"{owner}: `{name}` is a nested list of uneven lengths ({error}); pass an array of shape "
                         "(batch, ...).") from None
    if array.dtype == object:
        raise ValueError(f"{owner}: `{name}` is a list that is not an array of numbers; pass an array of shape "
                         "(batch, ...).")
    return array


def _is_symbolic(value):
    """True for a traced / graph tensor whose value cannot be read here."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return False
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly() or (isinstance(value, tf.Tensor) and not hasattr(value, "numpy"))
    if keras.backend.backend() == "jax":
        import jax

        return isinstance(value, jax.core.Tracer)
    return False


class GenerativeModel(keras.Model):
    """The base class of every zoo model (see the module docstring for what it owns).

    Subclasses call ``super().__init__(example_shape=..., data_kind=..., n_bits=...,
    value_range=..., **kwargs)`` and implement:

    * ``objective_terms(x, training)``: dict of per-example terms (nats) on
      validated input;
    * ``log_prob(x)``: per-example log-density (nats) of the model's density
      (``density`` says on what: ``"ambient"`` for a density on ``R^D``,
      ``"manifold"`` for a density on the learned d-dimensional manifold);
    * ``data_to_latent(x, stochastic, seed)``: validated data -> prior latent;
    * ``latent_to_data(z, output)``: the prior's output (``prior.generate`` /
      ``prior.decode``) -> data;
    * the attribute ``prior`` (a ``layers.Prior``) and ``latent_shape``.

    Args:
        example_shape: shape of one example (no batch axis).
        data_kind: ``"pixels"`` (uint8 in [0, 255], quantized to ``n_bits``)
            or ``"float"`` (float32).
        n_bits: int in [1, 8] for pixel models, None for float models.
        value_range: ``(low, high)`` the float data must lie in (e.g. ``(0,
            1)`` for float images), or None (any finite value).
        likelihood_term: overrides the class's ``likelihood_term`` for this
            instance (e.g. an M-flow, whose objective has no likelihood of x).
        **kwargs: ``keras.Model`` arguments (``name``).
    """

    likelihood_term = None
    """Name of the objective term that is a negative log-likelihood (its bits/dim is logged), or None."""
    density = "ambient"
    """What ``log_prob`` is a density on: ``"ambient"`` (R^D) or ``"manifold"`` (the learned d-dim manifold)."""
    stochastic_encoder = False
    """Whether ``encode(x, stochastic=True)`` draws from a posterior (else it is refused)."""
    diagnostics = ()
    """Names of entries of ``call``'s dict that are reported (as metrics of the same name), not objective terms."""

    @property
    def monitor(self):
        """The validation log (a key of ``fit``'s logs) that says whether training has converged.

        ``"val_loss"``: the held-out objective. A family whose objective changes
        with the step (a growing penalty coefficient) overrides it with a
        diagnostic whose meaning is fixed, so that a best-model choice and a
        flatness check compare like with like.
        """
        return "val_loss"

    def __init__(self, example_shape, data_kind, n_bits=None, value_range=None, likelihood_term="default", **kwargs):
        kwargs.setdefault("dtype", density_dtype())  # the model computes its density in float32 under a mixed policy
        super().__init__(**kwargs)
        policy = keras.config.dtype_policy().name
        if policy not in ("float32", "float64") and not (policy == "mixed_bfloat16" and data_kind == "pixels"):
            raise ValueError(
                f"{self.name}: built under the global dtype policy {policy!r}. "
                + ("Only pixel models (uint8 images) take 'mixed_bfloat16': their networks compute in bfloat16 and "
                   "every density term in float32, bits/dim within 0.0013 of float32 on the shipped presets, while "
                   "the networks of a float model see its values rounded to 3 significant digits (measured: the 2-D "
                   "manifold flows moved by up to 2.1 bits/dim, the float-image nf_spread_fading_square by 0.017). "
                   if policy == "mixed_bfloat16" else
                   "Models take float32 (float64 for dense references) or, for pixel models, 'mixed_bfloat16'. ")
                + "Build it under keras.mixed_precision.set_global_policy('float32').")
        if likelihood_term != "default":
            self.likelihood_term = likelihood_term
        if data_kind not in DATA_KINDS:
            raise ValueError(f"`data_kind` must be one of {DATA_KINDS}; received {data_kind!r}.")
        self.example_shape = tuple(int(d) for d in example_shape)
        self.num_dims = math.prod(self.example_shape)
        self.data_kind = data_kind
        if data_kind == "pixels":
            if len(self.example_shape) != 3:
                raise ValueError(f"Pixel models take images (H, W, C); received example shape {self.example_shape}.")
            if n_bits is None or not 1 <= int(n_bits) <= 8:
                raise ValueError(f"Pixel models need n_bits in [1, 8]; received {n_bits!r}.")
            if value_range is not None:
                raise ValueError("Pixel models take uint8 in [0, 255]; `value_range` applies to float models only.")
            self.n_bits = int(n_bits)
            self.value_range = None
        else:
            if n_bits is not None:
                raise ValueError(f"Float models take no n_bits; received n_bits={n_bits!r}.")
            self.n_bits = None
            self.value_range = None if value_range is None else (float(value_range[0]), float(value_range[1]))
        self.bits_per_dim_tracker = (keras.metrics.Mean(name="bits_per_dim")
                                     if self.likelihood_term is not None else None)
        self.diagnostic_trackers = [keras.metrics.Mean(name=name) for name in self.diagnostics]

    # ------------------------------------------------------------ contract
    @property
    def is_image_model(self):
        """True for image-shaped examples ``(H, W, C)`` (pixels, or float images)."""
        return len(self.example_shape) == 3

    @property
    def input_dtype(self):
        """The dtype the model takes: ``"uint8"`` (pixels) or ``"float32"``."""
        return "uint8" if self.data_kind == "pixels" else "float32"

    @property
    def default_output(self):
        """``sample`` / ``decode``'s default output: ``"uint8"`` pixels, or ``"float"``."""
        return "uint8" if self.data_kind == "pixels" else "float"

    @property
    def noise_shapes(self):
        """Per-example shapes of the noise ``sample`` draws: (latent noise, observation noise or None)."""
        return self.prior.noise_shapes

    @property
    def has_observation_noise(self):
        return self.noise_shapes[1] is not None

    def describe(self):
        """Plain facts about the model that ``zoo.train``, ``zoo.evaluate`` and ``export`` use."""
        return {
            "class_name": type(self).__name__,
            "name": self.name,
            "example_shape": list(self.example_shape),
            "data_kind": self.data_kind,
            "input_dtype": self.input_dtype,
            "n_bits": self.n_bits,
            "value_range": None if self.value_range is None else list(self.value_range),
            "latent_shape": list(self.latent_shape),
            "noise_shapes": [None if s is None else list(s) for s in self.noise_shapes],
            "loss_unit": LOSS_UNIT,
            "likelihood_term": self.likelihood_term,
            "density": self.density,
            "stochastic_encoder": self.stochastic_encoder,
            "diagnostics": list(self.diagnostics),
            "monitor": self.monitor,
            "num_classes": self.num_classes,
        }

    def validate(self, x, name="x"):
        """Checks ``x`` against the data contract; returns it (gated on the value checks inside graphs).

        Pixel models take uint8 tensors (a float array is refused even when its
        values are whole: 0..16 digits or 0/1 masks would be read as 8-bit
        pixels); float models take float tensors, finite and within
        ``value_range``.
        """
        x = array_input(x, name, self.name)
        check_example_shape(x, self.example_shape, name, self.name)
        if x.shape[0] == 0:  # static: an eager or NumPy batch (a graph's batch axis is None)
            raise ValueError(f"{self.name}: `{name}` holds no examples (shape {tuple(x.shape)}); pass at least one "
                             "(the backends would otherwise differ: an error on TensorFlow, an empty result on JAX).")
        dtype = _dtype_name(x)
        if self.data_kind == "pixels":
            if dtype != "uint8":
                raise ValueError(
                    f"{self.name}: `{name}` has dtype {dtype}, but this model takes uint8 pixels in [0, 255] "
                    f"(quantized to n_bits={self.n_bits} inside the model). Scale the data to 0..255 and convert it "
                    "with `x.astype('uint8')` (e.g. scikit-learn's 0..16 digits: `(x * 255 / 16).round()"
                    ".astype('uint8')`, or use zoo.data.load_digits_images)."
                )
            return x
        if not dtype.startswith(("float", "bfloat")):
            raise ValueError(
                f"{self.name}: `{name}` has dtype {dtype}, but this model takes float data"
                + (f" in [{self.value_range[0]:g}, {self.value_range[1]:g}]" if self.value_range else "")
                + ". Convert it first, e.g. uint8 images with `x.astype('float32') / 255` "
                "(`model.as_model_input(images)` does this)."
            )
        x = check_finite(x, name, self.name)
        if self.value_range is not None:
            low, high = self.value_range
            x = check_value_range(x, low, high, name, self.name,
                                  hint=f"this model takes float data in [{low:g}, {high:g}] (uint8 images: "
                                       "`x.astype('float32') / 255`).")
        return x

    def as_model_input(self, data):
        """NumPy data in the model's contract: uint8 images become [0, 1] floats for a float-image model.

        Anything else is returned unchanged and checked by ``validate`` when
        used (ambiguous input is refused there, not guessed at here).
        """
        data = np.asarray(data)
        if self.data_kind == "float" and data.dtype == np.uint8 and self.value_range == (0.0, 1.0):
            return data.astype(np.float32) / 255.0
        return data

    def check_dataset(self, data, caller="fit", what=None):
        """Refuses training / evaluation data that breaks the contract, before the first step.

        The dtype and example shape always; the values (finite, within
        ``value_range``) of in-memory float data (arrays, eager tensors).
        """
        if data is None:
            return
        what = what or ("training data" if caller == "fit" else "data")
        if hasattr(data, "element_spec"):
            spec = data.element_spec
            if (self.num_classes is None and isinstance(spec, (tuple, list)) and len(spec) >= 2
                    and spec[1] is not None):
                self._refuse_labels(spec[1], caller, what=f"the labels in the {what}'s (x, labels) pairs")
            while isinstance(spec, (tuple, list)):
                spec = spec[0]
            dtype = keras.backend.standardize_dtype(spec.dtype)
            shape = spec.shape
        elif isinstance(data, keras.utils.PyDataset):
            return  # checked batch by batch in the steps
        else:
            element = data
            while isinstance(element, (tuple, list)):
                element = element[0]
            dtype = _dtype_name(element)
            shape = np.shape(element)
            if len(shape) and shape[0] == 0:
                raise ValueError(f"{self.name}.{caller}: the {what} holds no examples (shape {tuple(shape)}); "
                                 f"{caller} needs at least one batch.")
        if getattr(shape, "rank", 0) is not None:  # a batch of examples of the model's shape (traced steps see less)
            check_example_shape(types.SimpleNamespace(shape=tuple(shape)), self.example_shape, "x",
                                f"{self.name}.{caller}")
        ok = dtype == "uint8" if self.data_kind == "pixels" else dtype.startswith(("float", "bfloat"))
        if not ok:
            raise ValueError(
                f"{self.name}.{caller}: the {what} has dtype {dtype}, but this model takes "
                + ("uint8 pixels (convert with `x.astype('uint8')` after scaling to 0..255)."
                   if self.data_kind == "pixels" else
                   "float data (uint8 images: `model.as_model_input(images)` or `x.astype('float32') / 255`).")
            )
        if self.data_kind == "float" and not hasattr(data, "element_spec"):
            self._check_values(element, caller, what)

    def _check_values(self, data, caller, what, chunk=4096):
        """In-memory float data: finite and within ``value_range``, read now, on every backend.

        Inside a JAX trace values cannot be read, and inside a TensorFlow graph
        a bad batch is found only when its step runs; arrays and eager tensors
        are checked here, before the first step. (uint8 pixels always hold
        whole numbers in [0, 255].)
        """
        if _is_symbolic(data) or not (isinstance(data, np.ndarray) or ops.is_tensor(data)):
            return
        for start in range(0, len(data), chunk):
            try:
                self.validate(data[start:start + chunk])
            except ValueError as error:
                raise ValueError(f"{self.name}.{caller}: rows {start}..{min(start + chunk, len(data)) - 1} of the "
                                 f"{what} break the data contract (refused before the first step): {error}") from None

    # ------------------------------------------------- class conditioning
    @property
    def num_classes(self):
        """``K`` for a class-conditional model (it models ``p(x | y)``; labels go with ``fit``, ``sample``,
        ``log_prob``), None for an unconditional one. The prior decides: a class-conditional prior makes a
        class-conditional model."""
        return self.prior.num_classes

    def _track_class_prior(self):
        """Creates the class prior ``p(y)`` of a class-conditional model (families call it from ``build``).

        ``class_counts`` (non-trainable, ``(K,)``) holds the label counts of
        the data of the last ``fit``; ``class_log_prior`` is their log
        frequencies (uniform before any fit).
        """
        if self.num_classes is not None and not hasattr(self, "class_counts"):
            self.class_counts = self.add_weight(shape=(self.num_classes,), initializer="zeros", trainable=False,
                                                name="class_counts")

    @property
    def class_log_prior(self):
        """``log p(y)``, shape ``(K,)``: the label frequencies of the last ``fit`` (uniform before one)."""
        self._require_conditional("class_log_prior")
        counts = ops.convert_to_numpy(self.class_counts).astype(np.float64)
        if counts.sum() == 0:
            return np.full(self.num_classes, -math.log(self.num_classes))
        with np.errstate(divide="ignore"):  # a class absent from the training labels has p(y) = 0
            return np.log(counts / counts.sum())

    def every_class(self, count):
        """Labels that cycle through the classes (``0, 1, ..., K-1, 0, ...``) for ``count`` samples; None when
        unconditional. What pictures and sample grids pass as ``sample(..., labels=)``."""
        return None if self.num_classes is None else np.arange(int(count), dtype=np.int32) % self.num_classes

    def _require_conditional(self, caller):
        if self.num_classes is None:
            raise ValueError(f"{self.name}.{caller}: this model is not class-conditional. Build it with "
                             "`num_classes=K` (e.g. zoo.make_glow(..., num_classes=10)) and train it with "
                             "`fit(images, labels)`.")

    def _labels_for(self, labels, batch_size, caller):
        """Checked int32 labels for a conditional model (an int means that class for every example); None otherwise."""
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(f"{self.name}.{caller}: this model is not class-conditional, so `labels` has no "
                                 "meaning; leave it None (or build the model with `num_classes=K`).")
            return None
        if labels is None:
            raise ValueError(f"{self.name}.{caller}: this model is class-conditional ({self.num_classes} classes) and "
                             f"needs `labels=`: an int in [0, {self.num_classes - 1}] or one class index per example.")
        static = batch_size is None or isinstance(batch_size, (int, np.integer))
        if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
            if batch_size is None:
                raise ValueError(f"{self.name}.{caller}: an int label needs a known batch size; pass one label per "
                                 "example instead.")
            labels = (np.full((int(batch_size),), int(labels), np.int32) if static
                      else ops.full((batch_size,), int(labels), "int32"))  # a graph's dynamic batch
        return check_labels(labels, self.num_classes, f"{self.name}.{caller}", batch_size if static else None)

    def _default_save_signature(self):
        """TensorFlow's default serving signature of a saved model (a Keras TF-backend hook): ``(x, labels)`` for a
        class-conditional model, whose ``call`` takes the labels (Keras would trace ``call(x)`` alone)."""
        if self.num_classes is None:
            return super()._default_save_signature()
        import tensorflow as tf

        spec = (tf.TensorSpec((None,) + tuple(self.example_shape), self.input_dtype, name="x"),
                tf.TensorSpec((None,), tf.int32, name="labels"))

        @tf.function(input_signature=[spec])
        def serving_default(inputs):
            return self(inputs)

        return serving_default

    def _split_inputs(self, inputs):
        """``call``'s input: ``(x, labels)`` for a conditional model, ``x`` otherwise."""
        if self.num_classes is None:
            return inputs, None
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise ValueError(f"{self.name} is class-conditional: call it on `(x, labels)`, and train it with "
                             "`fit(images, labels)`.")
        return inputs[0], inputs[1]

    def set_class_prior(self, labels):
        """Sets ``p(y)`` to the frequencies of ``labels`` (class indices, checked); ``fit`` on arrays does it itself."""
        self._require_conditional("set_class_prior")
        labels = check_labels(np.asarray(labels), self.num_classes, f"{self.name}.set_class_prior")
        counts = np.bincount(ops.convert_to_numpy(labels), minlength=self.num_classes)
        self.class_counts.assign(ops.cast(counts, self.class_counts.dtype))

    def _conditional_data(self, x, y, caller, count=False):
        """Packs ``fit`` / ``evaluate`` data as ``((x, labels),)`` for a conditional model; returns ``(data, counts)``.

        NumPy arrays / tensors: ``x`` with ``y`` = labels; ``counts`` (with
        ``count=True``) are their label counts. A ``tf.data.Dataset`` or a
        ``keras.utils.PyDataset`` of ``(x, labels)`` batches: ``y`` must be
        None, and the labels are read once for the counts only while no class
        prior is set (a stream is not re-read every epoch; ``set_class_prior``
        sets it from the labels of the whole training set).
        """
        unset = count and float(ops.convert_to_numpy(ops.sum(self.class_counts))) == 0
        if hasattr(x, "element_spec") and hasattr(x, "map"):  # tf.data.Dataset
            if y is not None:
                raise ValueError(f"{self.name}.{caller}: a tf.data.Dataset carries its own labels; pass y=None.")
            spec = x.element_spec
            if not (isinstance(spec, tuple) and len(spec) == 2):
                raise ValueError(f"{self.name}.{caller}: this model is class-conditional; the dataset must yield "
                                 "(images, labels) pairs.")
            owner = f"{self.name}.{caller}"
            data = x.map(lambda images, labels: ((images, check_labels(labels, self.num_classes, owner)),))
            counts = None
            if unset:
                counts = np.zeros(self.num_classes, np.int64)
                for _, labels in x:
                    counts += np.bincount(check_labels(labels, self.num_classes, owner).numpy(),
                                          minlength=self.num_classes)
            return data, counts
        if isinstance(x, keras.utils.PyDataset):
            if y is not None:
                raise ValueError(f"{self.name}.{caller}: a PyDataset carries its own labels; pass y=None.")
            data = _LabelledBatches(x, self.num_classes, f"{self.name}.{caller}")
            counts = None
            if unset:
                counts = sum(np.bincount(data[i][0][1], minlength=self.num_classes) for i in range(len(data)))
            return data, counts
        if y is None:
            raise ValueError(f"{self.name}.{caller}: this model is class-conditional ({self.num_classes} classes); pass "
                             f"the labels: `{caller}(images, labels)` with integer class indices.")
        labels = check_labels(np.asarray(y) if not ops.is_tensor(y) else y, self.num_classes,
                              f"{self.name}.{caller}", len(x))
        counts = np.bincount(ops.convert_to_numpy(labels), minlength=self.num_classes) if count else None
        return (x, ops.convert_to_numpy(labels)), counts

    def class_log_likelihoods(self, x):
        """``log p(x | y = k)`` for every class, shape ``(batch, K)`` (nats; ``density`` says on what space)."""
        self._require_conditional("class_log_likelihoods")
        batch = ops.shape(x)[0]  # an int, or a tensor for a graph's dynamic batch (exports)
        return ops.stack([self.log_prob(x, labels=self._labels_for(k, batch, "class_log_likelihoods"))
                          for k in range(self.num_classes)], axis=-1)

    def classify(self, x, return_log_posterior=False):
        """The Bayes classifier of the generative model: ``argmax_y log p(x | y) + log p(y)``.

        ``p(y)`` is ``class_log_prior`` (the label frequencies of the training
        data). With ``return_log_posterior=True`` also returns ``log p(y | x)``,
        shape ``(batch, K)``.
        """
        self._require_conditional("classify")
        joint = ops.convert_to_numpy(self.class_log_likelihoods(x)).astype(np.float64) + self.class_log_prior
        predicted = joint.argmax(axis=-1).astype(np.int32)
        if not return_log_posterior:
            return predicted
        top = joint.max(axis=-1, keepdims=True)
        return predicted, joint - (top + np.log(np.exp(joint - top).sum(axis=-1, keepdims=True)))

    # --------------------------------------------------------- objective
    def objective_terms(self, x, training=False):
        """Per-example terms of the training objective (dict of ``(batch,)`` tensors, nats).

        The sum of the entries not named in ``diagnostics`` is minimized (``objective``).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement objective_terms(x, training).")

    def objective(self, terms):
        """The per-example objective (nats): the sum of ``terms`` (``call``'s dict) without the ``diagnostics``."""
        return sum(value for key, value in terms.items() if key not in self.diagnostics)

    def call(self, inputs, training=False):
        """The per-example objective terms (a dict; see ``objective_terms``); ``inputs`` = ``(x, labels)`` when conditional."""
        x, labels = self._split_inputs(inputs)
        if labels is None:
            return self.objective_terms(x, training=training)
        return self.objective_terms(x, training=training, labels=labels)

    def per_dim(self, nats):
        """Nats per example -> bits per dimension."""
        return nats / (self.num_dims * math.log(2.0))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The objective in bits/dim: (weighted mean of the summed terms + weight penalties) / (D ln 2).

        ``y`` (labels in the data) is ignored; see ``replica_share`` for the
        distributed convention.
        """
        del y
        if y_pred is None:
            y_pred = self(x, training=training)
        loss = weighted_mean(self.objective(y_pred), sample_weight)
        for penalty in self.losses:
            loss = loss + ops.cast(penalty, loss.dtype)
        return replica_share(self.per_dim(loss))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates ``bits_per_dim`` (where a likelihood term exists), the ``diagnostics`` and any compiled metrics."""
        if self.bits_per_dim_tracker is not None:
            self.bits_per_dim_tracker.update_state(self.per_dim(y_pred[self.likelihood_term]),
                                                   sample_weight=sample_weight)
        for tracker in self.diagnostic_trackers:
            tracker.update_state(y_pred[tracker.name], sample_weight=sample_weight)
        if getattr(self, "_compile_metrics", None) is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    # ----------------------------------------------------------- density
    def log_prob(self, x, labels=None):
        """Per-example log-density in nats (``density`` says on what space); ``log p(x | y)`` given ``labels``."""
        raise NotImplementedError(f"{type(self).__name__} must implement log_prob(x).")

    def bits_per_dim(self, x, labels=None):
        """``-log_prob(x) / (D ln 2)`` per example.

        For pixel models the discrete bits/dim at ``n_bits`` (compare numbers
        only at equal n_bits). For ``density == "manifold"`` models it is a
        density on the learned manifold per ambient dimension, not comparable
        with ambient bits/dim.
        """
        if labels is None:
            return -self.per_dim(self.log_prob(x))
        return -self.per_dim(self.log_prob(x, labels=labels))

    # ------------------------------------------------------ latent <-> data
    def data_to_latent(self, x, stochastic=False, seed=None):
        raise NotImplementedError

    def latent_to_data(self, z, output):
        raise NotImplementedError

    def check_output(self, output):
        output = self.default_output if output is None else output
        if output not in OUTPUTS:
            raise ValueError(f"{self.name}: `output` must be 'uint8' or 'float'; received {output!r}.")
        if output == "uint8" and not self.is_image_model:
            raise ValueError(f"{self.name}: output='uint8' is for image models; this one returns float vectors.")
        if output == "uint8" and self.data_kind == "float" and self.value_range != (0.0, 1.0):
            raise ValueError(f"{self.name}: output='uint8' shows float images in [0, 1] as pixels; this model's images "
                             f"have value_range {self.value_range}. Use output='float'.")
        return output

    def _check_noise_scale(self, noise_scale, default, caller):
        """``noise_scale`` -> a value to use; refused when the model has no observation noise."""
        if noise_scale is None:
            return default
        if not self.has_observation_noise:
            raise ValueError(
                f"{self.name}.{caller}: this model has no observation noise, so `noise_scale` has no meaning here; "
                "leave it unset (its samples and decodes already lie on the model's support)."
            )
        _check_nonnegative(noise_scale, "noise_scale", self.name, caller)
        return noise_scale

    def encode(self, x, stochastic=False, seed=None):
        """Data -> prior latent (shape ``(batch,) + latent_shape``).

        Deterministic by default (the pseudo-inverse / encoder mean);
        ``stochastic=True`` draws from the posterior with ``seed`` where the
        model has one (``stochastic_encoder``) and is refused otherwise.
        """
        if stochastic and not self.stochastic_encoder:
            raise ValueError(f"{self.name}.encode: this model's encoder is deterministic; stochastic=True is not "
                             "available (it would return the same latent).")
        if seed is not None and not stochastic:
            raise ValueError(f"{self.name}.encode: `seed` is used only with stochastic=True.")
        return self.data_to_latent(self.validate(x), stochastic=bool(stochastic), seed=seed)

    def decode(self, latent, noise_scale=None, seed=None, output=None, noise=None):
        """Prior latent -> data (uint8 pixels, or floats with ``output="float"``).

        ``noise_scale`` (default 0: on the learned manifold) multiplies the
        observation noise's covariance of models that have it (noisy injective
        and spread priors; refused otherwise); its standard-normal noise comes
        from ``seed`` or is given as ``noise`` (shape ``(batch,) +
        noise_shapes[1]``).
        """
        output = self.check_output(output)
        noise_scale = self._check_noise_scale(noise_scale, 0.0, "decode")
        if not self.has_observation_noise and (seed is not None or noise is not None):
            raise ValueError(f"{self.name}.decode: this model has no observation noise; `seed` / `noise` are unused.")
        check_example_shape(latent, self.prior.latent_shape, "latent", self.name)
        latent = check_finite(latent, "latent", self.name)
        kwargs = {"noise_scale": noise_scale, "seed": seed, "noise": noise} if self.has_observation_noise else {}
        z = self.prior.decode(ops.cast(latent, self.compute_dtype), **kwargs)
        return self.latent_to_data(z, output)

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=None, output=None,
                 labels=None):
        """Deterministic sampling from given standard-normal noise (what exported samplers run).

        ``sample(n, t, s, seed)`` equals ``generate(*layers.draw_noise(model.noise_shapes, n, seed), t, s)``.
        A class-conditional model needs ``labels`` (an int, or one class index per sample).
        """
        output = self.check_output(output)
        _check_nonnegative(temperature, "temperature", self.name, "generate")
        noise_scale = self._check_noise_scale(noise_scale, 1.0, "generate")
        check_example_shape(latent_noise, self.noise_shapes[0], "latent_noise", self.name)
        latent_noise = check_finite(latent_noise, "latent_noise", self.name)
        if self.has_observation_noise:
            if observation_noise is None:
                raise ValueError(
                    f"{self.name}.generate: this model adds observation noise; pass `observation_noise` of shape "
                    f"(batch, {', '.join(map(str, self.noise_shapes[1]))})."
                )
            check_example_shape(observation_noise, self.noise_shapes[1], "observation_noise", self.name)
            observation_noise = check_finite(observation_noise, "observation_noise", self.name)
        elif observation_noise is not None:
            raise ValueError(f"{self.name}.generate: this model has no observation noise; pass "
                             "observation_noise=None.")
        labels = self._labels_for(labels, latent_noise.shape[0], "generate")
        z = self.prior.generate(latent_noise, observation_noise, temperature, noise_scale,
                                **self.prior.label_arguments(labels))
        return self.latent_to_data(z, output)

    def sample(self, num_samples, temperature=1.0, noise_scale=None, seed=None, output=None, labels=None):
        """Draws ``num_samples`` examples.

        Args:
            num_samples: int >= 1.
            temperature: float >= 0, multiplies the prior's standard deviation
                (GLOW's convention: the standard deviation, not the variance).
            noise_scale: float >= 0, multiplies the observation noise's
                covariance of models that have it (default 1: the trained
                noise; 0: on the learned manifold); refused by models without.
            seed: int or None; equal seeds give equal samples.
            output: ``"uint8"`` or ``"float"`` (images; default: the data kind's).
            labels: class-conditional models only (and required there): an
                int (every sample of that class) or ``num_samples`` class
                indices.

        Returns:
            A tensor of shape ``(num_samples,) + example_shape``.
        """
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"{self.name}.sample: `num_samples` must be an int >= 1; received {num_samples!r}.")
        noise = draw_noise(self.noise_shapes, int(num_samples), seed)
        return self.generate(*noise, temperature=temperature, noise_scale=noise_scale, output=output, labels=labels)

    # --------------------------------------------------------- act-norm init
    def actnorm_layers(self):
        return [layer for layer in self._flatten_layers(include_self=False, recursive=True)
                if isinstance(layer, ActNorm)]

    @property
    def is_initialized(self):
        """True when every data-initialized act-norm layer has had its init (models without: True)."""
        return all(layer.is_initialized for layer in self.actnorm_layers() if layer.data_init)

    def initialize(self, x):
        """Data-dependent initialization (act-norm) on the batch ``x``, eagerly; layers already initialized stay.

        ``fit`` calls it on its first batch when needed; call it yourself before
        a custom training loop. The default runs the objective once in training
        mode on a copy of the state, so nothing but the act-norm layers changes.
        """
        x = self.validate(ops.convert_to_tensor(x))
        self._initialize(x)

    def _initialize(self, x):
        """Family hook: run every act-norm layer (flow and prior) once in training mode on ``x``."""
        del x

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """``keras.Model.fit`` after the data-contract check and act-norm init on the first batch.

        A class-conditional model trains ``p(x | y)`` on ``fit(images, labels)``
        (or a ``tf.data.Dataset`` of ``(images, labels)`` pairs) and sets its
        class prior ``p(y)`` to the label frequencies of that data; an
        unconditional model refuses ``y`` (and labelled ``validation_data``)
        rather than ignoring it.
        """
        self._refuse_labels(y, "fit")
        validation = kwargs.get("validation_data")
        if (self.num_classes is None and isinstance(validation, (tuple, list)) and len(validation) >= 2
                and validation[1] is not None):
            self._refuse_labels(validation[1], "fit", what="labels in `validation_data`")
        self.check_dataset(x)
        if validation is not None:  # checked now, not after the first epoch
            self.check_dataset(validation[0] if isinstance(validation, (tuple, list)) else validation,
                               what="validation data")
        if not self.is_initialized:
            self.initialize(first_batch(x, batch_size))
        if self.num_classes is not None:
            x, counts = self._conditional_data(x, y, "fit", count=True)
            y = None
            if kwargs.get("validation_data") is not None:
                kwargs["validation_data"] = self._conditional_validation(kwargs["validation_data"])
            if counts is not None:
                self.class_counts.assign(ops.cast(counts, self.class_counts.dtype))
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def _refuse_labels(self, y, caller, what="`y`"):
        """An unconditional model has no use for labels: refused, not ignored (a missing ``num_classes=`` is likely)."""
        if y is not None and self.num_classes is None:
            raise ValueError(f"{self.name}.{caller}: this model is unconditional, so {what} would be ignored; call "
                             f"{caller}(x) without labels (to model p(x | y), build it with num_classes=K).")

    def _conditional_validation(self, data):
        if hasattr(data, "element_spec") or isinstance(data, keras.utils.PyDataset):
            return self._conditional_data(data, None, "fit")[0]
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError(f"{self.name}.fit: this model is class-conditional; pass validation_data=(images, labels) "
                             "or a tf.data.Dataset of such pairs.")
        return (self._conditional_data(data[0], data[1], "fit")[0],)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        """``keras.Model.evaluate``; a class-conditional model takes ``evaluate(images, labels)``."""
        self._refuse_labels(y, "evaluate")
        if not kwargs.get("_use_cached_eval_dataset"):  # fit's own per-epoch validation: checked once, by fit
            self.check_dataset(x, caller="evaluate")
        if self.num_classes is not None and not kwargs.get("_use_cached_eval_dataset"):
            x, _ = self._conditional_data(x, y, "evaluate")
            y = None
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    def train_step(self, *args, **kwargs):
        """Keras's step; under ``MultiWorkerMirroredStrategy`` its logs get an axis Keras can reduce over.

        Keras 3's TensorFlow trainer reduces the step's logs across workers with
        ``strategy.reduce("MEAN", value, axis=0)``, which fails on the scalar logs
        every model returns ("Invalid reduction dimension 0 for input with 0
        dimensions"; tensorflow/tensorflow#72388). Giving each log one axis of
        length 1 makes that reduction the mean over the replicas.
        """
        return self._multi_worker_logs(super().train_step(*args, **kwargs))

    def test_step(self, *args, **kwargs):
        """Keras's evaluation step, with the same multi-worker fix as ``train_step``."""
        return self._multi_worker_logs(super().test_step(*args, **kwargs))

    def _multi_worker_logs(self, logs):
        if keras.backend.backend() != "tensorflow" or not isinstance(logs, dict):
            return logs
        import tensorflow as tf

        strategy = tf.distribute.get_strategy()
        if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and strategy.extended._in_multi_worker_mode()):
            return logs
        return {key: tf.reshape(value, (1,)) if getattr(value, "shape", None) == () else value
                for key, value in logs.items()}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Skips Keras's symbolic build when nothing is left to build.

        Keras 3's TensorFlow trainer, under any tf.distribute strategy, all-reduces
        the first data batch across the replicas at the start of every ``fit``
        only to read its shape and dtype. Collective ops have no uint8 kernel, so
        every pixel model failed there under ``MultiWorkerMirroredStrategy``.
        When the layers and the optimizer are built and no compiled metric or
        loss waits for a build (``zoo.train`` builds both first), there is
        nothing for that step to do.
        """
        waiting = [getattr(self, name, None) for name in ("_compile_metrics", "_compile_loss")]
        if (all(layer.built for layer in self._flatten_layers()) and getattr(self, "optimizer", None) is not None
                and self.optimizer.built and all(item is None or item.built for item in waiting)):
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile_from_config(self, config):
        """Re-compiles a reloaded model (``.keras`` file or preset directory) as it was compiled when saved.

        Keras's own version skips models whose class overrides ``compile``
        (``DenoisingFlow``) and yet marks them compiled, so their first ``fit``
        crashed; every zoo model's ``compile`` takes Keras's arguments.
        """
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built and getattr(self, "optimizer", None) is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def begin_training_epoch(self, epoch, epochs):
        """Called by ``zoo.train`` before each epoch (0-based of ``epochs``): multi-phase models switch phase here.

        A no-op for single-phase models. It depends on ``(epoch, epochs)``
        only, so a resumed run is in the same phase as an uninterrupted one.
        """
        del epoch, epochs

    def summary_facts(self):
        """JSON-serializable facts a model card reports beyond the metrics (a learned spectrum); ``{}`` by default."""
        return {}

    def fit_priors(self, x, seed=0, labels=None):
        """Fits post-hoc latent priors to the encoded training data (per class given ``labels``, for a
        class-conditional model); a no-op (returns {}) for models without."""
        del x, seed, labels
        return {}

    # ---------------------------------------------------------- serialization
    def save_to_preset(self, directory, metadata=None, overwrite=False, include_optimizer=True):
        """Writes a self-describing preset directory (``zoo.presets.weights.save_to_preset``).

        ``zoo.get(directory)`` rebuilds this model with identical outputs.
        ``include_optimizer=False`` leaves a compiled model's optimizer state
        out of the weights file (shipped weights: a third of the size).
        """
        from zoo.presets import weights

        facts = {"n_bits": self.n_bits, "input_shape": list(self.example_shape), "data_kind": self.data_kind}
        facts.update(metadata or {})
        return weights.save_to_preset(self, directory, facts, overwrite=overwrite, include_optimizer=include_optimizer)



class _LabelledBatches(keras.utils.PyDataset):
    """A PyDataset of ``(x, labels)`` batches as a conditional model's input ``((x, labels),)`` (labels checked)."""

    def __init__(self, source, num_classes, owner):
        super().__init__()
        self.source, self.num_classes, self.owner = source, num_classes, owner

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        batch = self.source[index]
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ValueError(f"{self.owner}: this model is class-conditional; the PyDataset must yield (images, labels) "
                             "batches.")
        x, labels = batch
        return ((x, np.asarray(ops.convert_to_numpy(check_labels(np.asarray(labels), self.num_classes, self.owner,
                                                                   len(x))))),)


def _check_nonnegative(value, name, owner, caller):
    """Eager values must be one finite number >= 0 (graph tensors are checked by the signatures that take them).

    An eager tensor of one element (any rank, e.g. shape ``(1,)``) is read as
    its number; a tensor of several is refused (one value applies to the
    whole batch).
    """
    if _is_symbolic(value):
        return
    if ops.is_tensor(value):
        array = np.asarray(ops.convert_to_numpy(value))
        if array.size != 1:
            raise ValueError(f"{owner}.{caller}: `{name}` must be one number for the whole batch; received a tensor "
                             f"of shape {tuple(array.shape)}.")
        number = array.reshape(()).item()
    else:
        number = value
    if isinstance(number, bool) or not isinstance(number, (int, float, np.integer, np.floating)):
        raise ValueError(f"{owner}.{caller}: `{name}` must be a number; received {value!r}.")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{owner}.{caller}: `{name}` must be a finite number >= 0; received {value!r}.")
