"""FlowModel: preprocessing + flow + prior as one trainable Keras model."""

import math

import keras
import numpy as np
from keras import ops

import layers as flow_layers
from layers.checks import check_finite
from layers.preprocessing import centered_dequantization


def _first_batch(data, batch_size):
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
            "FlowModel.fit cannot read a first batch for act-norm initialization from a "
            f"{type(data).__name__}; call `model.initialize(batch)` before `fit`, or pass a "
            "NumPy array, a tf.data.Dataset or a keras.utils.PyDataset."
        )
    while isinstance(element, (tuple, list)):
        element = element[0]
    if isinstance(element, dict):
        raise TypeError("FlowModel takes a single input tensor, not a dict of inputs.")
    return element


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


@keras.saving.register_keras_serializable(package="flow_zoo")
class FlowModel(keras.Model):
    """A normalizing flow as a Keras model: ``log p(x) = log p(z) + log_det``.

    Data -> latent: ``x`` (uint8 pixels for images, float vectors otherwise)
    -> ``preprocessing`` (for images: quantization to ``n_bits`` levels,
    ``Dequantize`` and ``LogitTransform``) -> ``flow`` -> ``prior``. Calling
    the model returns the per-example log-likelihood; ``compile`` +
    ``fit`` train it on the negative log-likelihood in bits per dimension
    with no custom loop (``y``, if the data has labels, is ignored).

    For images ``log_prob`` is the log-density of the dequantized levels
    ``k + u`` (nats), a lower bound on the discrete log-probability of the
    ``n_bits`` image, and ``bits_per_dim = -log_prob / (D ln 2)``, equal to
    ``-log p(y) / (D ln 2) + n_bits`` for the density ``p`` on the unit cube
    (DESIGN.md section 4). For vectors both are continuous densities.

    Sampling: ``temperature`` multiplies the prior's standard deviation;
    ``noise_scale`` multiplies the observation noise of a noisy injective
    prior (it has no effect with the unit Gaussian prior).

    Args:
        flow: a ``layers.FlowLayer`` mapping preprocessed data to latents.
        input_shape: tuple, the shape of one example (no batch axis).
        prior: a prior layer (default ``layers.StandardNormal()``) offering
            ``log_prob``, ``sample``, ``encode`` and ``decode``.
        n_bits: int in [1, 8] for image models (inputs are uint8 pixels),
            None for vector models (inputs are float vectors).
        preprocessing: a ``FlowLayer`` applied before ``flow``; default for
            images ``FlowSequence([Dequantize(n_bits), LogitTransform(0.05)])``
            and none for vectors.
        **kwargs: standard ``keras.Model`` arguments (``name``).

    Example:

    >>> model = zoo.make_glow((8, 8, 1), num_levels=2, steps_per_level=4,
    ...                       hidden_channels=64, n_bits=5)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> model.fit(images_uint8, batch_size=64, epochs=10)
    >>> samples = model.sample(16, temperature=0.7, seed=0)  # uint8 images

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017;
        Kingma & Dhariwal, "Glow", NeurIPS 2018.
    """

    def __init__(self, flow, input_shape, prior=None, n_bits=None, preprocessing=None, **kwargs):
        super().__init__(**kwargs)
        deserialize = keras.saving.deserialize_keras_object
        self.flow = deserialize(flow) if isinstance(flow, dict) else flow
        self.prior = flow_layers.StandardNormal() if prior is None else (
            deserialize(prior) if isinstance(prior, dict) else prior
        )
        if isinstance(preprocessing, dict):
            preprocessing = deserialize(preprocessing)
        self.example_shape = tuple(int(d) for d in input_shape)
        self.n_bits = None if n_bits is None else int(n_bits)
        if preprocessing is None and self.n_bits is not None:
            preprocessing = flow_layers.FlowSequence(
                [flow_layers.Dequantize(self.n_bits), flow_layers.LogitTransform(0.05)], name="preprocessing"
            )
        self.preprocessing = preprocessing
        self.num_dims = math.prod(self.example_shape)
        self.build((None,) + self.example_shape)

    # ----------------------------------------------------------------- build
    def build(self, input_shape):
        shape = (None,) + self.example_shape
        if self.preprocessing is not None:
            if not self.preprocessing.built:
                self.preprocessing.build(shape)
            shape = self.preprocessing.compute_output_shape(shape)[0]
        if not self.flow.built:
            self.flow.build(shape)
        latent_shape = self.flow.compute_output_shape(shape)[0]
        if not self.prior.built:  # sub-layers deserialized from a .keras file arrive built
            self.prior.build(latent_shape)
        self.latent_shape = tuple(latent_shape[1:])
        self.built = True

    @property
    def is_image_model(self):
        return self.n_bits is not None

    # ------------------------------------------------------------ data -> latent
    def _validate(self, x, name="x"):
        """Checks shape (and dtype and finiteness for continuous data); returns ``x`` gated on the checks."""
        flow_layers.check_example_shape(x, self.example_shape, name, self.name)
        if self.is_image_model:
            return x
        dtype = keras.backend.standardize_dtype(getattr(x, "dtype", None) or np.asarray(x).dtype)
        if not dtype.startswith(("float", "bfloat")):
            raise ValueError(
                f"{self.name}: `{name}` has dtype {dtype}, but this model (n_bits=None) takes continuous "
                "float data. Convert it first, e.g. images to [0, 1] with `x.astype('float32') / 255` "
                "(or use a model with n_bits for uint8 pixels)."
            )
        return check_finite(x, name, self.name)

    def preprocess(self, x, training=False):
        """Validated data -> the flow's input ``(h, log_det)`` (quantization, dequantization, logit for images)."""
        x = self._validate(x)
        if self.is_image_model:
            h = flow_layers.quantize_pixels(x, self.n_bits, name="x", owner=self.name)
        else:
            h = ops.cast(x, self.compute_dtype)
        log_det = ops.zeros((ops.shape(h)[0],), dtype=self.compute_dtype)
        if self.preprocessing is not None:
            h, log_det = self.preprocessing(h, training=training)
        return h, log_det

    def forward(self, x, training=False):
        """Maps data to the flow latent: returns ``(z, log_det)`` (all log-dets summed)."""
        h, log_det = self.preprocess(x, training=training)
        z, flow_log_det = self.flow(h, training=training)
        return z, log_det + flow_log_det

    def call(self, inputs, training=False):
        z, log_det = self.forward(inputs, training=training)
        return self.prior.log_prob(z, training=training) + log_det

    def log_prob(self, x):
        """Per-example log-likelihood in nats (see the class docstring for images)."""
        return self(x, training=False)

    def bits_per_dim(self, x):
        """Per-example negative log-likelihood in bits per dimension.

        For image models this is the discrete bits/dim at the model's
        ``n_bits`` (``model.n_bits``); compare numbers only at equal n_bits.
        """
        return self._bits_per_dim(self.log_prob(x))

    def _bits_per_dim(self, log_prob):
        return -log_prob / (self.num_dims * math.log(2.0))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean negative log-likelihood in bits per dimension (``y`` is ignored; see ``replica_share``)."""
        if y_pred is None:
            y_pred = self(x, training=training)
        return replica_share(weighted_mean(self._bits_per_dim(y_pred), sample_weight))

    def encode(self, x, stochastic=False, seed=None):
        """Data -> prior latent (the flow latent for a unit Gaussian prior).

        Images are dequantized at the centre of each pixel's bin, so the
        representation is deterministic and ``decode(encode(x))`` returns the
        quantized image exactly for a bijective flow.
        """
        with centered_dequantization(self):
            z, _ = self.forward(x, training=False)
        return self.prior.encode(z, stochastic=stochastic, seed=seed)

    # ------------------------------------------------------------ latent -> data
    def _to_data(self, z, output):
        h = self.flow.inverse(z)
        if self.preprocessing is not None:
            h = self.preprocessing.inverse(h)
        if not self.is_image_model:
            return h
        if output == "uint8":
            return flow_layers.pixels_from_levels(h, self.n_bits)
        if output == "float":
            return ops.cast(flow_layers.pixels_from_levels(h, self.n_bits), "float32") / 255.0
        raise ValueError(f"{self.name}: `output` must be 'uint8' or 'float'; received {output!r}.")

    def decode(self, latent, noise_scale=0.0, seed=None, output="uint8", noise=None):
        """Prior latent -> data (uint8 pixels, or floats in [0, 1] with output='float').

        ``noise_scale`` multiplies a noisy injective prior's noise covariance
        (0: on the learned manifold); its standard-normal noise is drawn from
        ``seed``, or given as ``noise`` (shape ``(batch,) +
        noise_shapes[1]``).
        """
        flow_layers.check_example_shape(latent, self.prior.latent_shape, "latent", self.name)
        latent = check_finite(latent, "latent", self.name)
        z = self.prior.decode(ops.cast(latent, self.compute_dtype), noise_scale=noise_scale, seed=seed, noise=noise)
        return self._to_data(z, output)

    @property
    def noise_shapes(self):
        """Per-example shapes of the noise ``sample`` draws: (latent noise, observation noise or None)."""
        return self.prior.noise_shapes

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0, output="uint8"):
        """Deterministic sampling from given standard-normal noise (what exported samplers run).

        ``sample(n, t, s, seed)`` equals ``generate(*layers.draw_noise(model.noise_shapes, n, seed), t, s)``.
        """
        flow_layers.check_example_shape(latent_noise, self.noise_shapes[0], "latent_noise", self.name)
        if self.noise_shapes[1] is not None:
            if observation_noise is None:
                raise ValueError(
                    f"{self.name}.generate: this model's prior adds observation noise; pass `observation_noise` "
                    f"of shape (batch, {', '.join(map(str, self.noise_shapes[1]))})."
                )
            flow_layers.check_example_shape(observation_noise, self.noise_shapes[1], "observation_noise", self.name)
        z = self.prior.generate(latent_noise, observation_noise, temperature, noise_scale)
        return self._to_data(z, output)

    def sample(self, num_samples, temperature=1.0, noise_scale=1.0, seed=None, output="uint8"):
        """Draws ``num_samples`` examples.

        Args:
            num_samples: int.
            temperature: float >= 0, multiplies the prior's standard deviation.
            noise_scale: float >= 0, multiplies a noisy injective prior's
                noise covariance (no effect with a unit Gaussian prior).
            seed: int or None; equal seeds give equal samples.
            output: ``"uint8"`` pixels or ``"float"`` in [0, 1] (images only).

        Returns:
            A tensor of shape ``(num_samples,) + input_shape``.
        """
        if temperature < 0 or noise_scale < 0:
            raise ValueError(
                f"{self.name}.sample: temperature and noise_scale must be >= 0; "
                f"received temperature={temperature}, noise_scale={noise_scale}."
            )
        z = self.prior.sample(int(num_samples), temperature=temperature, noise_scale=noise_scale, seed=seed)
        return self._to_data(z, output)

    # --------------------------------------------------------- act-norm init
    def actnorm_layers(self):
        return [l for l in self._flatten_layers(include_self=False, recursive=True) if isinstance(l, flow_layers.ActNorm)]

    @property
    def is_initialized(self):
        """True when every act-norm layer has had its data-dependent init."""
        return all(l.is_initialized for l in self.actnorm_layers() if l.data_init)

    def initialize(self, x):
        """Runs act-norm data-dependent initialization on the batch ``x`` (eagerly).

        ``fit`` calls this on its first batch when needed; call it yourself
        before a custom training loop. Layers already initialized (for example
        after loading weights) are left alone.
        """
        self.forward(ops.convert_to_tensor(x), training=True)

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """``keras.Model.fit``, preceded by act-norm init on the first batch if needed."""
        if not self.is_initialized:
            self.initialize(_first_batch(x, batch_size))
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    # ---------------------------------------------------------- serialization
    def save_to_preset(self, directory, metadata=None, overwrite=False):
        """Writes a self-describing preset directory (see ``zoo.weights.save_to_preset``).

        ``zoo.get(directory)`` rebuilds this model with identical outputs.
        """
        from zoo import weights

        facts = {"n_bits": self.n_bits, "input_shape": list(self.example_shape)}
        facts.update(metadata or {})
        return weights.save_to_preset(self, directory, facts, overwrite=overwrite)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "flow": serialize(self.flow),
            "prior": serialize(self.prior),
            "input_shape": list(self.example_shape),
            "n_bits": self.n_bits,
            "preprocessing": None if self.preprocessing is None else serialize(self.preprocessing),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
