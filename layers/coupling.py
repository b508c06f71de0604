"""Affine coupling with a convolutional (images) or MLP (vectors) conditioner."""

import keras
from keras import ops

from layers.base import FlowLayer, split_channels, sum_except_batch


def conditioner_layers(rank, hidden_units, num_hidden_layers, out_channels, dtype=None, activation="relu"):
    """The coupling conditioner network, last layer zero-initialized.

    Rank 4 (images): 3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 conv (GLOW's).
    Rank 2 (vectors): ``num_hidden_layers`` dense ReLU layers and a dense output.
    ``dtype``: their dtype policy; None: the global policy (``mixed_bfloat16``
    makes them compute in bfloat16 while the coupling itself stays float32).
    ``activation``: the hidden layers' Keras activation name in place of ReLU
    (e.g. ``"leaky_relu"``, slope 0.2).
    """
    dtype = dtype or keras.config.dtype_policy()
    if rank == 4:
        return [
            keras.layers.Conv2D(hidden_units, 3, padding="same", activation=activation, dtype=dtype, name="conv_in"),
            keras.layers.Conv2D(hidden_units, 1, padding="same", activation=activation, dtype=dtype,
                                name="conv_hidden"),
            keras.layers.Conv2D(out_channels, 3, padding="same", kernel_initializer="zeros", dtype=dtype, name="conv_out"),
        ]
    return [
        keras.layers.Dense(hidden_units, activation=activation, dtype=dtype, name=f"dense_{i}")
        for i in range(num_hidden_layers)
    ] + [keras.layers.Dense(out_channels, kernel_initializer="zeros", dtype=dtype, name="dense_out")]


def build_sequence(sequence, input_shape):
    """Builds a list of Keras layers applied one after the other."""
    shape = tuple(input_shape)
    for layer in sequence:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def apply_sequence(sequence, x):
    """The layers one after the other; the result in ``x``'s dtype (a bfloat16 conditioner hands back float32)."""
    dtype = x.dtype
    for layer in sequence:
        x = layer(x)
    return ops.cast(x, dtype)


@keras.saving.register_keras_serializable(package="flow_zoo")
class AffineCoupling(FlowLayer):
    """Affine coupling: one half of the channels transforms the other.

    The last axis is split into ``x_a = x[..., :C // 2]`` and
    ``x_b = x[..., C // 2:]``. A conditioner network maps ``x_a`` to a shift
    ``t`` and a raw scale ``r``; the log-scale is bounded as
    ``log_s = clamp * tanh(r / clamp)`` so it stays in ``(-clamp, clamp)``.
    Then ``z_a = x_a`` and ``z_b = x_b * exp(log_s) + t``, so
    ``log_det = sum(log_s)``.

    The conditioner is convolutional for images (3x3 conv, ReLU, 1x1 conv,
    ReLU, 3x3 conv, as in GLOW) and an MLP for vectors. Its last layer is
    zero-initialized, so a new coupling is the identity.

    Volume-preserving ("incompressible") option: with
    ``volume_preserving=True`` the bounded log-scale is normalized to sum
    zero over every transformed entry of an example,
    ``log_s <- log_s - mean(log_s)``, so the Jacobian determinant is exactly
    one and ``log_det`` is exactly 0 (the prior then carries all the volume,
    as the spread flows need). With a single transformed entry this is an
    additive (NICE) coupling.

    Args:
        hidden_units: int, channels (images) or units (vectors) of the hidden
            conditioner layers.
        num_hidden_layers: int, hidden layers of the MLP conditioner (vectors
            only; the image conditioner always has two).
        log_scale_clamp: float > 0, the bound on ``|log_s|`` (before the
            volume-preserving normalization, which can at most double it).
        volume_preserving: Python bool, normalize the log-scale to sum zero
            (log-det exactly 0). Default False (the RealNVP / GLOW coupling).
        activation: str, the Keras activation of the conditioner's hidden
            layers (default ``"relu"``; ``"leaky_relu"`` has slope 0.2, the
            spread paper's).
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, height, width, channels)`` or ``(batch, features)``,
            with at least 2 channels / features.
        training: unused.

    Example:

    >>> coupling = layers.AffineCoupling(hidden_units=64)
    >>> z, log_det = coupling(keras.random.normal((4, 8, 8, 4)))

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017;
        Kingma & Dhariwal, "Glow", NeurIPS 2018, section 3.3;
        Sorrenson et al., "Disentanglement by nonlinear ICA with general
        incompressible-flow networks (GIN)", ICLR 2020 (volume preserving);
        "On the latent space of flow-based models", appendix C.1, eq. 43.
    """

    def __init__(self, hidden_units=512, num_hidden_layers=2, log_scale_clamp=2.0, volume_preserving=False,
                 activation="relu", **kwargs):
        super().__init__(**kwargs)
        if log_scale_clamp <= 0:
            raise ValueError(f"AffineCoupling: `log_scale_clamp` must be > 0; received {log_scale_clamp}.")
        if not isinstance(activation, str):
            raise ValueError(f"AffineCoupling: `activation` must be a Keras activation name (it is saved in the "
                             f"config), e.g. 'relu' or 'leaky_relu'; received {activation!r}.")
        try:
            keras.activations.get(activation)
        except ValueError as error:
            raise ValueError(f"AffineCoupling: unknown `activation` {activation!r} ({error}); use a Keras activation "
                             "name such as 'relu' or 'leaky_relu'.") from None
        self.activation = activation
        self.hidden_units = int(hidden_units)
        self.num_hidden_layers = int(num_hidden_layers)
        self.log_scale_clamp = float(log_scale_clamp)
        self.volume_preserving = bool(volume_preserving)

    def build(self, input_shape):
        rank = len(input_shape)
        channels = input_shape[-1]
        if rank not in (2, 4):
            raise ValueError(
                "AffineCoupling expects vectors (batch, features) or images "
                f"(batch, height, width, channels); received shape {tuple(input_shape)}."
            )
        if channels is None or channels < 2:
            raise ValueError(
                f"AffineCoupling needs at least 2 channels to split; received {channels}. "
                "Squeeze images first, or use vectors of 2 or more features."
            )
        self.split = int(channels) // 2
        out_channels = 2 * (int(channels) - self.split)
        self.conditioner = conditioner_layers(rank, self.hidden_units, self.num_hidden_layers, out_channels,
                                              activation=self.activation)
        build_sequence(self.conditioner, tuple(input_shape[:-1]) + (self.split,))
        self.input_spec = keras.layers.InputSpec(ndim=rank, axes={-1: int(channels)})

    def _shift_and_log_scale(self, x_a):
        h = apply_sequence(self.conditioner, x_a)
        n = ops.shape(h)[-1] // 2
        shift, raw = split_channels(h, n)
        log_scale = self.log_scale_clamp * ops.tanh(raw / self.log_scale_clamp)
        if self.volume_preserving:
            axes = tuple(range(1, len(log_scale.shape)))
            log_scale = log_scale - ops.mean(log_scale, axis=axes, keepdims=True)
        return shift, log_scale

    def _log_det(self, log_scale):
        if self.volume_preserving:  # exactly 0, not a float sum of mean-free terms
            return ops.zeros((ops.shape(log_scale)[0],), dtype=log_scale.dtype)
        return sum_except_batch(log_scale)

    def call(self, inputs, training=None):
        x_a, x_b = split_channels(inputs, self.split)
        shift, log_scale = self._shift_and_log_scale(x_a)
        z_b = x_b * ops.exp(log_scale) + shift
        return ops.concatenate([x_a, z_b], axis=-1), self._log_det(log_scale)

    def _inverse(self, z, training=None):
        z_a, z_b = split_channels(z, self.split)
        shift, log_scale = self._shift_and_log_scale(z_a)
        x_b = (z_b - shift) * ops.exp(-log_scale)
        return ops.concatenate([z_a, x_b], axis=-1), -self._log_det(log_scale)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "num_hidden_layers": self.num_hidden_layers,
                "log_scale_clamp": self.log_scale_clamp,
            }
        )
        if self.volume_preserving:  # only when set: configs of existing models stay byte-identical
            config["volume_preserving"] = True
        if self.activation != "relu":  # likewise
            config["activation"] = self.activation
        return config


COUPLING_KINDS = ("affine", "volume_preserving", "spline")
_COUPLING_OPTIONS = {
    "affine": ("log_scale_clamp", "activation"),
    "volume_preserving": ("log_scale_clamp", "activation"),
    "spline": ("num_bins", "tail_bound"),
}


def coupling_factory(kind="affine", **options):
    """A coupling maker ``make(hidden_units, num_hidden_layers=2) -> FlowLayer`` for the flow builders.

    The builders (``zoo``'s ``glow_flow``, ``glow_step``, ``realnvp_flow`` and
    the DNF / spread builders) take the coupling as such a callable, so a
    spline GLOW or a volume-preserving RealNVP is built directly: the
    architecture code is written once and only the coupling changes.

    Args:
        kind: ``"affine"`` (``AffineCoupling``), ``"volume_preserving"``
            (``AffineCoupling(volume_preserving=True)``, log-det exactly 0) or
            ``"spline"`` (``layers.SplineCoupling``, rational-quadratic).
        **options: the coupling's own arguments, the layer defaults otherwise:
            ``log_scale_clamp`` and ``activation`` (affine kinds);
            ``num_bins``, ``tail_bound`` (spline).

    Returns:
        A callable ``make(hidden_units, num_hidden_layers=2)`` returning a new
        coupling layer at each call (``num_hidden_layers`` only shapes the MLP
        conditioner of vector inputs); its ``kind`` and ``options`` attributes
        say what it builds.

    Raises:
        ValueError: for an unknown kind or an option the kind does not take.

    Example:

    >>> make = layers.coupling_factory("spline", num_bins=5, tail_bound=3.0)
    >>> coupling = make(64)  # a SplineCoupling(64, 2, num_bins=5, tail_bound=3.0)

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017 (affine);
        Durkan et al., "Neural Spline Flows", NeurIPS 2019 (spline);
        Sorrenson et al., "GIN", ICLR 2020 (volume preserving).
    """
    if kind not in COUPLING_KINDS:
        raise ValueError(f"coupling_factory: `kind` must be one of {COUPLING_KINDS}; received {kind!r}.")
    unknown = sorted(set(options) - set(_COUPLING_OPTIONS[kind]))
    if unknown:
        raise ValueError(
            f"coupling_factory({kind!r}): unknown option(s) {unknown}; a {kind} coupling takes "
            f"{list(_COUPLING_OPTIONS[kind])}."
        )

    def make(hidden_units, num_hidden_layers=2):
        if kind == "spline":
            from layers.spline import SplineCoupling  # layers.spline builds on this module's conditioners

            return SplineCoupling(hidden_units, num_hidden_layers, **options)
        return AffineCoupling(hidden_units, num_hidden_layers, volume_preserving=kind == "volume_preserving", **options)

    make.kind, make.options = kind, dict(options)
    return make
