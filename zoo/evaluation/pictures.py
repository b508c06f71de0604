"""Pictures: sample grids, reconstructions, interpolations, curves, embeddings, 2-D densities (PNG).

Every PNG is written through ``zoo.files.staged_file`` and carries a text
chunk ``flow_zoo`` (``PNG_KEY``): an existing file at the target is replaced
only if it carries it too (a picture this project wrote); any other file (a
user's photo, a PNG from elsewhere or from a flow-zoo release before the tag)
is refused with ``FileExistsError``.
"""

import numpy as np

from zoo import files

PNG_KEY = "flow_zoo"
PNG_VALUE = "written by flow-zoo"
PNG_HOW = (f"flow-zoo's pictures carry a PNG text chunk {PNG_KEY!r}; this one does not (if an older flow-zoo wrote "
           "it, delete it)")


def is_project_png(path):
    """True for a PNG this project wrote (it carries the ``flow_zoo`` text chunk)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.format == "PNG" and PNG_KEY in image.text
    except (OSError, ValueError, SyntaxError):  # not an image PIL reads: not ours
        return False


def writing_png(path):
    """``staged_file`` for a picture: yields a staging path; replaces only a PNG this project wrote."""
    return files.staged_file(path, overwrite=True, recognize=is_project_png, how=PNG_HOW)


def refuse_foreign_pictures(paths):
    """Raises ``FileExistsError`` before any work if one of ``paths`` exists and is not a picture this project wrote."""
    for path in paths:
        files.refuse_unless_replaceable_file(path, True, is_project_png, PNG_HOW)


# ------------------------------------------------------------------ pictures


def tile_images(rows, scale, pad=2):
    """Tiles rows of uint8 images ``(h, w, c)`` into one picture on a white background.

    Args:
        rows: list of rows, each a sequence of images (rows may differ in length).
        scale: integer upscaling of each pixel.
        pad: pixels of white space around and between images.

    Returns:
        uint8 ``(height, width)`` for grey images, ``(height, width, c)`` otherwise.
    """
    h, w, c = np.asarray(rows[0][0]).shape
    cols = max(len(row) for row in rows)
    grid = np.full((len(rows) * (h * scale + pad) + pad, cols * (w * scale + pad) + pad, c), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for col, image in enumerate(row):
            big = np.repeat(np.repeat(np.asarray(image), scale, axis=0), scale, axis=1)
            top, left = pad + r * (h * scale + pad), pad + col * (w * scale + pad)
            grid[top:top + h * scale, left:left + w * scale] = big
    return grid[..., 0] if c == 1 else grid


def save_png(array, path):
    """Writes uint8 ``array`` as a PNG tagged as this project's (see the module docstring); returns ``path``."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, PNG_VALUE)
    with writing_png(path) as staged:
        Image.fromarray(array).save(staged, format="PNG", pnginfo=info)
    return path


def scale_for(image_shape):
    return max(1, 64 // image_shape[0])


def temperature_grid(model, temperatures, columns, seed=0, seed_per_row=False):
    """uint8 picture of samples: one row of ``columns`` per temperature (float images shown as 8-bit pixels).

    Every row uses the noise of ``seed`` (``seed_per_row``: ``seed + row``), so
    grids of the same model at different times are comparable. A class-conditional
    model's columns go through the classes in turn (``model.every_class``).
    """
    rows = []
    for index, temperature in enumerate(temperatures):
        images = np.asarray(model.sample(int(columns), temperature=float(temperature),
                                         seed=seed + index if seed_per_row else seed,
                                         labels=model.every_class(columns)))
        if images.dtype != np.uint8:
            images = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
        rows.append(list(images))
    return tile_images(rows, scale_for(model.example_shape))


def sample_grid(model, path, temperatures=(0.5, 0.7, 0.85, 1.0), noise_scales=(0.0, 0.5, 1.0), seed=0):
    """PNG: rows = temperatures, columns = noise scales; every cell uses the same noise (so only t and s vary).

    Models without observation noise (unit Gaussian prior) get one column: the noise scale has no effect.
    A class-conditional model draws class 0.
    """
    from layers import draw_noise

    if not model.has_observation_noise:
        noise_scales = (None,)

    latent_noise, observation_noise = draw_noise(model.noise_shapes, 1, seed)
    labels = model.every_class(1)
    rows = [[np.asarray(model.generate(latent_noise, observation_noise, t, s, labels=labels))[0] for s in noise_scales]
            for t in temperatures]
    return save_png(tile_images(rows, scale_for(model.example_shape)), path)


def reconstruction_strip(model, images, path):
    """PNG: originals (top row) over their on-manifold reconstructions (bottom row)."""
    recon = np.asarray(model.decode(model.encode(images)))
    return save_png(tile_images([list(images), list(recon)], scale_for(model.example_shape)), path)


def interpolation(model, first, second, path, steps=8):
    """PNG: decodes of the latents linearly interpolated between ``encode(first)`` and ``encode(second)``."""
    a, b = np.asarray(model.encode(first[None]))[0], np.asarray(model.encode(second[None]))[0]
    weights = np.linspace(0.0, 1.0, steps)[:, None]
    latents = ((1 - weights) * a.reshape(1, -1) + weights * b.reshape(1, -1)).reshape((steps,) + a.shape)
    decoded = np.asarray(model.decode(latents.astype("float32")))
    return save_png(tile_images([list(decoded)], scale_for(model.example_shape)), path)


def figure(path, draw, size=(5, 4)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=size, dpi=100)
    try:
        draw(figure)
        figure.tight_layout()
        with writing_png(path) as staged:
            figure.savefig(staged, format="png", metadata={PNG_KEY: PNG_VALUE})
    finally:
        plt.close(figure)
    return path


def metric_curve(rows, path, metric_name):
    """PNG: a metric against noise scale, one line per temperature (rows from ``sweep``)."""
    def draw(figure):
        axis = figure.add_subplot(1, 1, 1)
        for t in sorted({r["temperature"] for r in rows}):
            points = sorted((r["noise_scale"], r["value"]) for r in rows if r["temperature"] == t)
            axis.plot(*zip(*points), marker="o", label=f"t = {t:g}")
        axis.set_xlabel("noise scale s")
        axis.set_ylabel(metric_name)
        axis.legend()
    return figure(path, draw)


def umap_embedding(model, images, labels, path, seed=0):
    """PNG: supervised UMAP of the encodings, coloured by label."""
    import umap

    latents = np.asarray(model.encode(images)).reshape(len(images), -1)
    embedding = umap.UMAP(random_state=seed, n_jobs=1).fit_transform(latents, y=labels)

    def draw(figure):
        axis = figure.add_subplot(1, 1, 1)
        scatter = axis.scatter(embedding[:, 0], embedding[:, 1], c=labels, cmap="tab10", s=4)
        figure.colorbar(scatter, ax=axis)
        axis.set_title("supervised UMAP of encode(x)")
    return figure(path, draw)


def density_grid(model, manifold, path, half_width=None, n=200):
    """PNG: a 2-D model's learned log-density on a grid next to the data (the ground truth's samples)."""
    data = manifold.data
    half_width = half_width or float(np.abs(data).max() * 1.2)
    axis_values = np.linspace(-half_width, half_width, n)
    xx, yy = np.meshgrid(axis_values, axis_values)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
    log_density = np.concatenate([np.asarray(model.log_prob(c)) for c in np.array_split(points, 10)]).reshape(n, n)
    log_density = np.maximum(log_density, log_density.max() - 12.0)  # log scale, 12 nats of range

    def draw(figure):
        left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
        shown = left.imshow(log_density, origin="lower", extent=[-half_width, half_width, -half_width, half_width])
        figure.colorbar(shown, ax=left)
        left.set_title("learned log-density")
        right.scatter(data[:, 0], data[:, 1], s=1)
        right.set_xlim(-half_width, half_width)
        right.set_ylim(-half_width, half_width)
        right.set_aspect("equal")
        right.set_title(f"{manifold.name} samples")
    return figure(path, draw, size=(9, 4))


def sample_scatter(model, manifold, path, num=2000, seed=0):
    """PNG: model samples next to ground-truth samples (2-D, or the first two coordinates of 3-D data)."""
    samples = np.asarray(model.sample(num, seed=seed, labels=model.every_class(num)))

    def draw(figure):
        for index, (points, title) in enumerate(((manifold.data, f"{manifold.name} data"), (samples, "model samples"))):
            axis = figure.add_subplot(1, 2, index + 1, projection="3d" if points.shape[1] == 3 else None)
            if points.shape[1] == 3:
                axis.scatter(points[:, 0], points[:, 1], points[:, 2], s=1)
            else:
                axis.scatter(points[:, 0], points[:, 1], s=1)
            axis.set_title(title)
    return figure(path, draw, size=(9, 4))
