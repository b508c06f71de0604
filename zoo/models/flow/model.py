"""FlowModel: preprocessing + flow + prior as one trainable Keras model."""

import keras
from keras import ops

import layers as flow_layers
from layers.preprocessing import centered_dequantization
from zoo.models.base import GenerativeModel, array_input


@keras.saving.register_keras_serializable(package="flow_zoo")
class FlowModel(GenerativeModel):
    """A normalizing flow as a Keras model: ``log p(x) = log p(z) + log_det``.

    Data -> latent: ``x`` (uint8 pixels for images, float vectors otherwise)
    -> ``preprocessing`` (for images: quantization to ``n_bits`` levels,
    ``Dequantize`` and ``LogitTransform``) -> ``flow`` -> ``prior``. Calling
    the model returns the objective terms ``{"nll": -log p(x)}`` (nats per
    example, the ``GenerativeModel`` protocol); ``compile`` + ``fit`` train
    it on the negative log-likelihood in bits per dimension with no custom
    loop (``y``, if the data has labels, is ignored).

    For images ``log_prob`` is the log-density of the dequantized levels
    ``k + u`` (nats), a lower bound on the discrete log-probability of the
    ``n_bits`` image, and ``bits_per_dim = -log_prob / (D ln 2)``, equal to
    ``-log p(y) / (D ln 2) + n_bits`` for the density ``p`` on the unit cube
    (DESIGN.md section 4). For vectors both are continuous densities.

    Sampling: ``temperature`` multiplies the prior's standard deviation;
    ``noise_scale`` multiplies the observation noise of a noisy injective
    or spread prior (models without observation noise refuse it).

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

    likelihood_term = "nll"
    density = "ambient"

    def __init__(self, flow, input_shape, prior=None, n_bits=None, preprocessing=None, value_range=None, **kwargs):
        super().__init__(input_shape, "pixels" if n_bits is not None else "float", n_bits=n_bits,
                         value_range=value_range, **kwargs)
        deserialize = keras.saving.deserialize_keras_object
        self.flow = deserialize(flow) if isinstance(flow, dict) else flow
        self.prior = flow_layers.StandardNormal() if prior is None else (
            deserialize(prior) if isinstance(prior, dict) else prior
        )
        if isinstance(preprocessing, dict):
            preprocessing = deserialize(preprocessing)
        if preprocessing is None and self.n_bits is not None:
            preprocessing = flow_layers.FlowSequence(
                [flow_layers.Dequantize(self.n_bits), flow_layers.LogitTransform(0.05)], name="preprocessing"
            )
        self.preprocessing = preprocessing
        self.build((None,) + self.example_shape)

    @property
    def stochastic_encoder(self):
        return bool(self.prior.stochastic_encoder)

    def summary_facts(self):
        facts = self.prior.summary_facts()
        return {"prior": facts} if facts else {}

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
        self.flow_latent_shape = tuple(latent_shape[1:])  # the flow's output; the prior may have its own latent
        self._track_class_prior()
        self.built = True

    @property
    def latent_shape(self):
        """Shape of one prior latent: what ``encode`` returns and ``decode`` takes (``d`` for NIF / DNF priors)."""
        return tuple(self.prior.latent_shape)

    # ------------------------------------------------------------ data -> latent
    def preprocess(self, x, training=False):
        """Validated data -> the flow's input ``(h, log_det)`` (quantization, dequantization, logit for images)."""
        x = self.validate(x)
        if self.data_kind == "pixels":
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

    def log_prob(self, x, training=False, labels=None):
        """Per-example log-likelihood in nats (see the class docstring for images); ``log p(x | y)`` given labels.

        A class-conditional model (a class-conditional prior) needs ``labels``:
        an int or one class index per example.
        """
        x = array_input(x, "x", self.name)
        labels = self._labels_for(labels, x.shape[0], "log_prob")
        z, log_det = self.forward(x, training=training)
        return self.prior.log_prob(z, training=training, **self.prior.label_arguments(labels)) + log_det

    def objective_terms(self, x, training=False, labels=None):
        """``{"nll": -log p(x)}`` (or ``-log p(x | y)``) per example (nats): the loss is the NLL in bits/dim."""
        return {"nll": -self.log_prob(x, training=training, labels=labels)}

    def class_log_likelihoods(self, x):
        """``log p(x | y = k)`` for every class, ``(batch, K)``: the flow runs once, the prior once per class."""
        self._require_conditional("class_log_likelihoods")
        z, log_det = self.forward(x, training=False)
        batch = ops.shape(z)[0]  # an int, or a tensor for a graph's dynamic batch (exports)
        return ops.stack([
            self.prior.log_prob(z, labels=self._labels_for(k, batch, "class_log_likelihoods")) + log_det
            for k in range(self.num_classes)
        ], axis=-1)

    def data_to_latent(self, x, stochastic=False, seed=None):
        """Data -> prior latent (the flow latent for a unit Gaussian prior).

        Images are dequantized at the centre of each pixel's bin, so the
        representation is deterministic and ``decode(encode(x))`` returns the
        quantized image exactly for a bijective flow.
        """
        with centered_dequantization(self):
            z, _ = self.forward(x, training=False)
        if stochastic:
            return self.prior.encode(z, stochastic=True, seed=seed)
        return self.prior.encode(z)

    # ------------------------------------------------------------ latent -> data
    def latent_to_data(self, z, output):
        """Flow latent -> data: the flow's inverse, then the preprocessing's (pixels for image models)."""
        h = self.flow.inverse(z)
        if self.preprocessing is not None:
            h = self.preprocessing.inverse(h)
        if self.data_kind != "pixels":  # float data; float images in [0, 1] as 8-bit pixels on request
            return ops.cast(ops.round(ops.clip(h, 0.0, 1.0) * 255.0), "uint8") if output == "uint8" else h
        pixels = flow_layers.pixels_from_levels(h, self.n_bits)
        return pixels if output == "uint8" else ops.cast(pixels, "float32") / 255.0

    # --------------------------------------------------------- act-norm init
    def _initialize(self, x):
        """Act-norm data initialization of the whole model, the prior's own flows included (eager, training mode)."""
        z, _ = self.forward(x, training=True)
        self.prior.initialize(z)

    # ---------------------------------------------------------- serialization
    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "flow": serialize(self.flow),
            "prior": serialize(self.prior),
            "input_shape": list(self.example_shape),
            "n_bits": self.n_bits,
            "preprocessing": None if self.preprocessing is None else serialize(self.preprocessing),
            "value_range": None if self.value_range is None else list(self.value_range),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
