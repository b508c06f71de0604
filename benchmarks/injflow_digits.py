r"""InjFlow vs autoencoders on scikit-learn's 8x8 digits: reconstruction error and sample Frechet distances.

Trains the small presets ``injflow_digits_8``, ``injflow_ln_digits_8``, ``ae_digits_8``,
``vae_digits_8`` and a beta-VAE (``vae_digits_8`` with ``decoder_std=0.1``) with Adam
(1e-3, the paper's optimizer) for ``--epochs`` on the digits training split, once per seed,
fits the post-hoc full-covariance Gaussian and 10-component GMM priors (paper section
2.2.1) to the encoded training digits and measures on the test split:

* reconstruction error (``zoo.evaluation.reconstruction_error``: squared L2 per image in
  8-bit units);
* Frechet distances on the features of a small CNN classifier of the digits
  (``zoo.evaluation.train_domain_classifier``; NOT FID: the Inception network is meaningless
  on 8x8 digits) between the test digits and (a) their reconstructions ("Rec."), (b)
  samples from the post-hoc Gaussian ("N"), (c) samples from the post-hoc GMM ("GMM"):
  the columns of the paper's table 1;

and writes its section of docs/RESULTS.md (``SECTION_HEADING``; the paper's own protocol is
benchmarks/injflow_mnist.py's) and the picture docs/figures/injflow_digits.png.

Usage:

    python benchmarks/injflow_digits.py [--epochs 30] [--seeds 0 1]

Budget: about 10 minutes on 2 shared CPU cores with the defaults. Digits are a toy: the
numbers compare the objectives with each other under equal budgets, not with the paper.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import (REPO_ROOT, add_json_argument, check_json_target, machine_description,  # noqa: E402
                               write_json, write_section)

SECTION_HEADING = "## InjFlow vs autoencoders on 8x8 digits (a proxy, not the paper's protocol)"
COLLAPSE_KL = 0.1  # nats per image: below this a VAE's encoder is (all but) ignored
MODELS = {  # label: (preset, overrides)
    "InjFlow": ("injflow_digits_8", {}),
    "InjFlow-ln": ("injflow_ln_digits_8", {}),
    "AE": ("ae_digits_8", {}),
    "VAE": ("vae_digits_8", {}),
    "beta-VAE (sigma=0.1)": ("vae_digits_8", {"decoder_std": 0.1}),
}


def verdict(distances, collapsed):
    """The verdict on the InjFlow paper's sample claims from {label: {"fd_gaussian": [per seed], "fd_gmm": [...]}}."""
    def stats(label, key):
        values = np.asarray(distances[label][key], dtype=float)
        return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0)

    seeds = min(len(values) for label in distances for values in distances[label].values())
    comparisons, beaten = [], seeds > 1
    for ours in ("InjFlow", "InjFlow-ln"):
        for other in ("AE", "VAE"):
            for key, prior in (("fd_gaussian", "N"), ("fd_gmm", "GMM")):
                (m1, s1), (m2, s2) = stats(ours, key), stats(other, key)
                lower = m1 < m2
                beaten &= lower and m2 - m1 > s1 + s2
                comparisons.append(f"{ours} {prior} {m1:.1f} vs {other} {m2:.1f}"
                                   + ("" if abs(m1 - m2) > s1 + s2 else " (within the seed spread)"))
    gmm_wins = [] if seeds < 2 else [label for label in distances  # lower by more than the seed spread
                if stats(label, "fd_gaussian")[0] - stats(label, "fd_gmm")[0]
                > stats(label, "fd_gaussian")[1] + stats(label, "fd_gmm")[1]]
    return ("Proxy reading (not the verdict on the paper, which the MNIST section gives; InjFlow paper, table 1: on "
            "MNIST, FID of InjFlow(-ln) samples below AE's and VAE's; samples from the post-hoc GMM better than from "
            "N): on this proxy (8x8 digits, d = 8, a classifier Frechet "
            f"distance instead of FID; {seeds} seed{'s' if seeds > 1 else ''}, the spread is the standard deviation over "
            "them) the first claim is "
            + ("seen" if beaten else "not seen" if seeds > 1 else "not decided (one seed)") + ": " + "; ".join(comparisons)
            + (f" ({', '.join(collapsed)} collapsed: see below)" if collapsed else "") + ". GMM beats N beyond the seed spread for "
            f"{len(gmm_wins)} of {len(distances)} models ({', '.join(gmm_wins)}), so the second claim is "
            + ("seen" if len(gmm_wins) == len(distances) else "seen for "
               + ("all but " + ", ".join(sorted(set(distances) - set(gmm_wins))) if gmm_wins else "none"))
            + ". The paper's own protocol (MNIST, d = 32, FID of reconstructions, N and GMM samples from 10,000 "
            "images each, 8 models, 2 seeds: 480,000 images through the 2015 Inception; that section gives the "
            "time per unit) is run unit by unit across sessions by benchmarks/injflow_mnist.py: see the section \"InjFlow "
            "vs regularized autoencoders on MNIST (InjFlow paper, table 1)\".")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "RESULTS.md"))
    parser.add_argument("--figure", default=os.path.join(REPO_ROOT, "docs", "figures", "injflow_digits.png"))
    add_json_argument(parser, "injflow_digits")
    args = parser.parse_args()
    if args.json:
        check_json_target(args.json, "injflow_digits")  # before the training, not after

    import keras

    import zoo
    from zoo import injflow
    from zoo.evaluation import metrics

    train, train_labels = zoo.datasets.load_digits("train")
    test, _ = zoo.datasets.load_digits("test")
    extractor, accuracy = zoo.evaluation.train_domain_classifier(train, train_labels, epochs=20, seed=0)
    features = lambda images: np.asarray(extractor.predict(images, verbose=0))  # noqa: E731
    real = features(test)
    floor = metrics.frechet_distance_from_features(features(train[: len(test)]), real)

    results = {label: [] for label in MODELS}
    picture_rows = [list(test[:12])]
    start_all = time.time()
    for seed in args.seeds:
        for label, (preset, overrides) in MODELS.items():
            keras.utils.set_random_seed(seed)
            model = zoo.get(preset, **overrides)
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
            start = time.time()
            history = model.fit(train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
            seconds = time.time() - start
            model.fit_priors(train, seed=seed)
            recon_images = np.asarray(model.reconstruct(test))
            terms = model.objective_terms(test)
            row = {
                "seed": seed, "train_seconds": seconds, "final_loss": float(history.history["loss"][-1]),
                # KL(q(z|x) || N(0, I)) in nats per test image (VAEs only): ~0 means posterior collapse
                "kl": float(np.mean(np.asarray(terms["kl"]))) if "kl" in terms else float("nan"),
                "recon_error": zoo.evaluation.reconstruction_error(model, test)["value"],
                "fd_rec": metrics.frechet_distance_from_features(real, features(recon_images)),
                "fd_gaussian": metrics.frechet_distance_from_features(
                    real, features(np.asarray(model.sample(len(test), seed=seed, prior="gaussian")))),
                "fd_gmm": metrics.frechet_distance_from_features(
                    real, features(np.asarray(model.sample(len(test), seed=seed, prior="gmm")))),
            }
            results[label].append(row)
            print(label, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
            if seed == args.seeds[0]:
                picture_rows += [list(recon_images[:12]), list(np.asarray(model.sample(12, seed=100)))]
    total = time.time() - start_all

    os.makedirs(os.path.dirname(args.figure), exist_ok=True)
    from PIL import Image

    Image.fromarray(zoo.evaluation.pictures.tile_images(picture_rows, scale=4)).save(args.figure)

    def cell(label, key, digits=1):
        values = np.array([r[key] for r in results[label]])
        text = f"{values.mean():.{digits}f}"
        return text + (f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else "")

    machine = machine_description()
    command = "python benchmarks/injflow_digits.py " + " ".join(
        [f"--epochs {args.epochs}", "--seeds " + " ".join(map(str, args.seeds))])
    lines = [
        SECTION_HEADING,
        "",
        f"Command: `{command}` ({total / 60:.1f} min on {machine['usable_cpus']} shared CPU cores, "
        f"{machine['cpu_model']}; TensorFlow {machine['tensorflow']}, Keras {machine['keras']}).",
        "",
        f"scikit-learn's 8x8 digits ({len(train)} train / {len(test)} test images), the small `*_digits_8` presets "
        f"(the paper's 5-layer conv encoder / transposed-conv decoder at 8-128 channels, d = 8), Adam 1e-3, batch "
        f"{args.batch_size}, {args.epochs} epochs, seeds {args.seeds} (mean ± standard deviation over seeds). "
        "Post-hoc priors fitted to the encoded training digits. Reconstruction error: squared L2 per image in "
        "8-bit units. Frechet distances on the features of a small CNN digit classifier (train accuracy "
        f"{accuracy:.3f}; NOT FID) between the test digits and their reconstructions (Rec.), samples from the "
        f"post-hoc Gaussian (N) and from the post-hoc 10-component GMM (GMM), {len(test)} images each; the same "
        f"distance between {len(test)} training and the test digits is {floor:.1f} (the floor).",
        f"Objectives and architecture: {injflow.PAPER} (zoo/models/injflow).",
        "",
        "| model | recon. error | FD Rec. | FD N | FD GMM | KL nats/image | final objective | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label in MODELS:
        lines.append(f"| {label} | {cell(label, 'recon_error', 0)} | {cell(label, 'fd_rec')} | "
                     f"{cell(label, 'fd_gaussian')} | {cell(label, 'fd_gmm')} | "
                     f"{cell(label, 'kl', 2) if np.isfinite(results[label][0]['kl']) else '-'} | {cell(label, 'final_loss', 2)} | "
                     f"{cell(label, 'train_seconds', 0)} |")
    best = lambda key: min(MODELS, key=lambda label: np.mean([r[key] for r in results[label]]))  # noqa: E731
    collapsed = [label for label in MODELS if np.isfinite(results[label][0]["kl"])
                 and np.mean([r["kl"] for r in results[label]]) < COLLAPSE_KL]
    lines += [
        "",
        f"Lowest mean reconstruction error: {best('recon_error')}; lowest mean FD of GMM samples: {best('fd_gmm')}; "
        f"of Gaussian samples: {best('fd_gaussian')} (compare with the ± over seeds before reading a ranking).",
        "",
        "The objectives are on different scales (the InjFlow terms, the VAE's sigma), so the final objective only "
        "says that each run converged to something finite. Picture (docs/figures/injflow_digits.png, first "
        "seed): top row test digits, then for each model in the table's order its reconstructions and 12 "
        "samples from its post-hoc GMM.",
    ]
    lines += ["", verdict({label: {key: [r[key] for r in rows] for key in ("fd_gaussian", "fd_gmm")}
                           for label, rows in results.items()}, collapsed)]
    for label in collapsed:
        kl = np.mean([r["kl"] for r in results[label]])
        lines += ["", f"{label} is a collapsed VAE: its KL term is {kl:.2g} nats per test image (< {COLLAPSE_KL}), so "
                  "its posterior is the prior, the encoder carries almost no information about the digit, and its "
                  "reconstructions and samples are all close to one mean image (hence its Frechet distances). With "
                  "decoder sigma^2 = 1 on pixels scaled to [0, 1] the reconstruction term (at most D / 2 = 32 nats) "
                  "cannot pay for much KL (the beta-VAE, sigma = 0.1, weighs reconstruction 100 times more: see its KL column)."]
    if args.json:
        write_json(args.json, {"command": command, "date": time.strftime("%Y-%m-%d"), "machine": machine,
                               "wall_seconds": total, "classifier_train_accuracy": float(accuracy),
                               "floor_frechet_distance": float(floor),
                               "results": {label: [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                                                    for k, v in row.items()} for row in rows]  # KL: VAEs only
                                           for label, rows in results.items()}}, "injflow_digits")
    write_section(args.doc, SECTION_HEADING, "\n".join(lines) + "\n")
    with open(args.doc) as f:
        if SECTION_HEADING not in f.read():  # another writer replaced the file meanwhile: write again
            write_section(args.doc, SECTION_HEADING, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
