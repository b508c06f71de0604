r"""The main job: train the GLOW baseline on scikit-learn's 8x8 digits, sample, save.

Usage:

    python -m zoo.demo --out runs/demo [--epochs 40] [--steps_per_level 8]

Writes, under ``--out``:

* ``samples.png``: a grid of samples, one row per temperature;
* ``glow_digits.keras``: the trained model (``keras.saving.load_model`` reads it);
* ``metrics.json``: the held-out bits/dim (with its n_bits) and the settings.

Needs no download (the digits ship with scikit-learn) and finishes in a few
minutes on 2 CPU cores.
"""

import json
import os
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/demo", "Directory for the samples, model and metrics.")
flags.DEFINE_integer("epochs", 40, "Training epochs (held-out bits/dim stops improving near 40).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("num_levels", 2, "GLOW multiscale levels.")
flags.DEFINE_integer("steps_per_level", 8, "GLOW steps per level.")
flags.DEFINE_integer("hidden_channels", 64, "Coupling conditioner width.")
flags.DEFINE_integer("n_bits", 5, "Quantization depth (5 keeps all 17 digit grey levels).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_list("temperatures", ["0.5", "0.7", "0.85", "1.0"], "Sampling temperatures, one grid row each.")
flags.DEFINE_integer("samples_per_row", 12, "Samples per temperature.")
flags.DEFINE_integer("seed", 0, "Seed of the weights, the data split and the samples.")


def run(out, epochs, batch_size, num_levels, steps_per_level, hidden_channels, n_bits, learning_rate,
        temperatures, samples_per_row, seed):
    """Trains, samples, saves; returns a dict of what was written where."""
    import keras
    import numpy as np
    import zoo
    from zoo.evaluation import pictures

    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(seed)
    train, _ = zoo.data.load_digits("train", seed=seed)
    test, _ = zoo.data.load_digits("test", seed=seed)

    model = zoo.make_glow((8, 8, 1), num_levels=num_levels, steps_per_level=steps_per_level,
                          hidden_channels=hidden_channels, n_bits=n_bits, seed=seed, name="glow_digits")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=5.0))
    print(f"GLOW on 8x8 digits: {model.count_params():,} parameters, {len(train)} train / {len(test)} "
          f"test images, n_bits={n_bits}")
    start = time.time()
    model.fit(train, batch_size=batch_size, epochs=epochs, validation_data=(test,), verbose=1)
    seconds = time.time() - start
    test_bpd = float(np.mean(np.asarray(model.bits_per_dim(test))))

    grid_path = pictures.save_png(
        pictures.temperature_grid(model, temperatures, samples_per_row, seed, seed_per_row=True),
        os.path.join(out, "samples.png"))

    model_path = os.path.join(out, "glow_digits.keras")
    model.save(model_path)
    reloaded = keras.saving.load_model(model_path)
    if not np.array_equal(np.asarray(reloaded.log_prob(test[:64])), np.asarray(model.log_prob(test[:64]))):
        raise RuntimeError(f"{model_path} does not reproduce the trained model's log_prob after loading.")

    metrics = {
        "test_bits_per_dim": test_bpd,
        "n_bits": n_bits,
        "test_images": int(len(test)),
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "temperatures": [float(t) for t in temperatures],
        "architecture": {"num_levels": num_levels, "steps_per_level": steps_per_level,
                         "hidden_channels": hidden_channels, "parameters": int(model.count_params())},
    }
    metrics_path = os.path.join(out, "metrics.json")
    with open(metrics_path, "w") as f:
        json.dump(metrics, f, indent=2)
    return {"samples": grid_path, "model": model_path, "metrics": metrics_path, **metrics}


def main(argv):
    del argv
    result = run(FLAGS.out, FLAGS.epochs, FLAGS.batch_size, FLAGS.num_levels, FLAGS.steps_per_level,
                 FLAGS.hidden_channels, FLAGS.n_bits, FLAGS.learning_rate, FLAGS.temperatures,
                 FLAGS.samples_per_row, FLAGS.seed)
    print(f"\nHeld-out bits/dim: {result['test_bits_per_dim']:.3f} (n_bits={result['n_bits']}, "
          f"{result['test_images']} test images); trained in {result['train_seconds']} s")
    print(f"Samples (rows: temperatures {', '.join(str(t) for t in result['temperatures'])}): {result['samples']}")
    print(f"Model (keras.saving.load_model): {result['model']}")
    print(f"Metrics: {result['metrics']}")


if __name__ == "__main__":
    app.run(main)
