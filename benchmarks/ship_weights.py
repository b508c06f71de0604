r"""Trains the presets this machine can train with ``python -m zoo.train`` and ships their weights.

For each entry of ``RUNS`` (preset, dataset, epochs) this runs exactly the command a user
would run,

    python -m zoo.train --model NAME --dataset DATA --epochs E --out runs/ship/NAME --sample_every 0

then ``python -m zoo.presets.publish runs/ship/NAME``, which measures the model card on the
held-out split and writes ``zoo/presets/shipped/NAME/``, ``zoo/presets/shipped.json``,
``docs/figures/cards/NAME.png`` and ``docs/MODEL_CARDS.md``. One run at a time; a preset
already shipped is skipped unless ``--force``. Epochs are chosen so that each validation
curve has flattened (see each card's ``final_logs`` and the run's ``history.json``).

Usage:

    nice python benchmarks/ship_weights.py [--only NAME ...] [--force]
"""

import argparse
import os
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (preset, dataset, epochs[, batch size, default 64]): 10000 training points for the 2-D manifolds, 1500 digits, 60000 28x28 images.
RUNS = [
    ("nf_spiral", "spiral", 40),
    ("nf_sin", "sin", 40),
    ("nif_spiral_1", "spiral", 40),
    ("nif_sin_1", "sin", 40),
    ("dnf_spiral_1", "spiral", 40),
    ("pie_spiral_1", "spiral", 40),
    ("mflow_spiral_1", "spiral", 40),
    ("dnf_sin_1", "sin", 40),
    ("nf_digits", "digits", 80),
    ("nif_digits_16", "digits", 80),
    ("deep_nif_digits_16", "digits", 80),
    ("dnf_digits_8", "digits", 80),
    ("ae_digits_8", "digits", 60),
    ("ae_l2_digits_8", "digits", 60),
    ("ae_sn_digits_8", "digits", 60),
    ("cae_digits_8", "digits", 60),
    ("vae_digits_8", "digits", 60),
    ("beta_vae_digits_8", "digits", 60),
    ("injflow_digits_8", "digits", 60),
    ("injflow_ln_digits_8", "digits", 60),
    # CPU-sized 28x28 presets: 60000 training images, validation on the 10000 test images; each run about 10-20
    # minutes here (the cosine decay ends at 0, so every curve ends flat; the cards hold the curves).
    ("nif_fmnist_small_64", "fmnist", 12),
    ("nf_fmnist_small", "fmnist", 12),  # issue 16 part 1: the NIFs' 12 epochs
    ("nif_fmnist_small_128", "fmnist", 12),  # issue 16: the d=128 NIF next to nif_fmnist_small_64
    # Spread-prior flows and their fixed-prior baselines at the paper's batch 100 (10000 training points).
    # The staircase decay (x0.7 every ``decay_every`` steps) needs 18 decays before the rate is small enough for the
    # validation curve to stop moving: 300 epochs of 100 steps for sin, 600 for the S-curve.
    ("spread_sin", "sin", 300, 100),
    ("nf_spread_sin", "sin", 300, 100),
    ("spread_scurve", "scurve", 600, 100),
    ("nf_spread_scurve", "scurve", 600, 100),
    ("spread_fading_square", "fading_square", 30, 100),  # 3000 steps: 12 decays (lr 4e-3 -> 5.5e-5)
    ("nf_spread_fading_square", "fading_square", 30, 100),
    ("ae_mnist_small_32", "mnist", 4),
    ("vae_mnist_small_32", "mnist", 4),
    ("ae_l2_mnist_small_32", "mnist", 4),
    ("ae_sn_mnist_small_32", "mnist", 4),
    ("cae_mnist_small_32", "mnist", 4),
    ("beta_vae_mnist_small_32", "mnist", 4),
    # InjFlow's penalty coefficient grows by 1/1000 per step (about 1 per epoch here), so its held-out objective
    # rises while the reconstruction falls; its cards follow `model.monitor` (val_reconstruction_mse).
    ("injflow_mnist_small_32", "mnist", 6),
    ("injflow_ln_mnist_small_32", "mnist", 6),
    ("dnf_fmnist_small_16", "fmnist", 10),
    # Class-conditional presets (issue 18): the same epochs as their unconditional twins; their cards add the
    # accuracy of model.classify and the sample accuracy judged by an independent CNN (1,000 samples per class).
    ("nf_digits_conditional", "digits", 80),
    ("nif_digits_conditional_16", "digits", 80),
    ("injflow_digits_conditional_8", "digits", 60),
    ("deep_nif_digits_conditional_16", "digits", 80),
    ("dnf_digits_conditional_8", "digits", 80),
    ("nif_fmnist_small_conditional_64", "fmnist", 12),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="train only these presets, in this order")
    parser.add_argument("--force", action="store_true", help="retrain presets that are already shipped")
    parser.add_argument("--runs_dir", default=os.path.join(REPO_ROOT, "runs", "ship"))
    args = parser.parse_args()
    sys.path.insert(0, REPO_ROOT)
    from zoo.presets import shipped

    runs = {run[0]: run for run in RUNS}
    unknown = sorted(set(args.only or ()) - set(runs))
    if unknown:
        parser.error(f"not in RUNS: {', '.join(unknown)}")
    for name, dataset, epochs, *batch in (runs[n] for n in args.only) if args.only else RUNS:  # --only: in its order
        if name in shipped.names() and not args.force:
            print(f"{name}: already shipped (--force to retrain)", flush=True)
            continue
        out = os.path.join(args.runs_dir, name)
        command = [sys.executable, "-m", "zoo.train", "--model", name, "--dataset", dataset, "--epochs", str(epochs),
                   *(["--batch_size", str(batch[0])] if batch else []), "--out", os.path.relpath(out, REPO_ROOT), "--sample_every", "0", "--saved_model=false",
                   "--resume"]
        start = time.time()
        subprocess.run(command, cwd=REPO_ROOT, check=True)
        subprocess.run([sys.executable, "-m", "zoo.presets.publish", os.path.relpath(out, REPO_ROOT)], cwd=REPO_ROOT,
                       check=True)
        shipped.registrations.cache_clear()
        print(f"{name}: trained and shipped in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
