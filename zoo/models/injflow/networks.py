"""The InjFlow paper's encoder / decoder networks (5 convolutions each) and their per-dataset strides."""

import math

import keras

# Encoder: 5 convolutions (channels hidden_channels * 2^i) + a dense layer to the latent;
# decoder: a dense layer + 5 transposed convolutions (channels 8, 4, 2, 1 x hidden_channels, then the
# image channels). The paper's supplementary (strides and kernels per dataset) is not available; these
# strides keep the layer count of the paper and end at the image size.
ARCHITECTURES = {
    "mnist": dict(image_shape=(28, 28, 1), encoder_strides=(2, 2, 2, 2, 1), decoder_strides=(2, 2, 1, 1, 1),
                  kernel_size=4),
    "cifar10": dict(image_shape=(32, 32, 3), encoder_strides=(2, 2, 2, 2, 1), decoder_strides=(2, 2, 2, 1, 1),
                    kernel_size=4),
    "celeba": dict(image_shape=(64, 64, 3), encoder_strides=(2, 2, 2, 2, 2), decoder_strides=(2, 2, 2, 2, 1),
                   kernel_size=4),
    "digits": dict(image_shape=(8, 8, 1), encoder_strides=(1, 2, 1, 2, 1), decoder_strides=(2, 2, 1, 1, 1),
                   kernel_size=3),
}
PAPER_LATENT_DIMS = {"mnist": 32, "cifar10": 128, "celeba": 128}

# ------------------------------------------------------------------ networks


def build_encoder(image_shape, output_dim, hidden_channels=64, strides=(2, 2, 2, 2, 1), kernel_size=4,
                  batch_norm_momentum=0.99, name="encoder"):
    """The paper's encoder: 5 x (Conv2D -> BatchNorm -> ELU), channels ``hidden_channels * 2^i``, then Dense."""
    model = keras.Sequential(name=name)
    model.add(keras.Input(tuple(image_shape)))
    for i, stride in enumerate(strides):
        model.add(keras.layers.Conv2D(hidden_channels * 2**i, kernel_size, strides=stride, padding="same",
                                      name=f"conv_{i}"))
        model.add(keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"bn_{i}"))
        model.add(keras.layers.ELU(name=f"elu_{i}"))
    model.add(keras.layers.Flatten(name="flatten"))
    model.add(keras.layers.Dense(output_dim, name="latent"))
    return model


def build_decoder(image_shape, latent_dim, hidden_channels=64, strides=(2, 2, 1, 1, 1), kernel_size=4,
                  batch_norm_momentum=0.99, spectral_norm=False, weight_decay=0.0, name="decoder"):
    """The paper's decoder: Dense -> BatchNorm -> ELU, then 5 transposed convolutions (the last is linear).

    Channels ``16, 8, 4, 2, 1 x hidden_channels`` and the image channels; the
    dense layer's output is ``image size / prod(strides)`` square.
    ``spectral_norm`` wraps every dense / transposed-conv layer in
    ``keras.layers.SpectralNormalization`` (AE+SN); ``weight_decay`` adds an
    L2 penalty on their kernels (AE+L2).
    """
    height, width, channels = (int(s) for s in image_shape)
    factor = math.prod(strides)
    if height % factor or width % factor:
        raise ValueError(f"Decoder strides {tuple(strides)} (total {factor}) must divide the image size {height}x{width}.")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    wrap = (lambda layer: keras.layers.SpectralNormalization(layer, name=f"sn_{layer.name}")) if spectral_norm else (
        lambda layer: layer)
    top = 16 * hidden_channels
    model = keras.Sequential(name=name)
    model.add(keras.Input((latent_dim,)))
    model.add(wrap(keras.layers.Dense((height // factor) * (width // factor) * top, kernel_regularizer=regularizer,
                                      name="dense")))
    model.add(keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="bn_dense"))
    model.add(keras.layers.ELU(name="elu_dense"))
    model.add(keras.layers.Reshape((height // factor, width // factor, top), name="reshape"))
    filters = [hidden_channels * 2**i for i in (3, 2, 1, 0)] + [channels]
    for i, (f, stride) in enumerate(zip(filters, strides)):
        model.add(wrap(keras.layers.Conv2DTranspose(f, kernel_size, strides=stride, padding="same",
                                                    kernel_regularizer=regularizer, name=f"deconv_{i}")))
        if i < len(filters) - 1:
            model.add(keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"bn_{i}"))
            model.add(keras.layers.ELU(name=f"elu_{i}"))
    return model
