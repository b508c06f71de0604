r"""NIF vs NF on Fashion-MNIST with the NIF paper's protocol (Cunningham et al., tables 1 and 2).

The trained, shipped presets (the same GLOW for the NF and both NIFs) are evaluated as the paper does:

1. **Noise scale chosen on training data.** For each NIF, FID between ``--sweep_samples`` samples (temperature 1)
   and as many training images drawn at random (seed ``--seed``) at ``--sweep_points`` noise scales in
   [0, ``--sweep_max``] (the authors' code sweeps 15 values in [0, 1.2]); s* is the minimum. The model's
   ``noise_scale`` s scales the variance of the NIF's observation noise, x ~ N(A z + b, s Sigma) (the paper's
   text; s = 1: the trained model; s = 0: on the learned manifold). The authors' sampler scales unit noise as a
   standard deviation instead, so by default (``--sweep_units std``) the grid is theirs, in standard-deviation
   units, and s = grid value squared (the NIFs here learn Sigma close to I).
2. **FID on the test set** between ``--samples`` samples (NIF: at its s*; NF: its samples at temperature 1) and
   the first ``--samples`` test images, with the project's port of the 2015 Inception (docs/FID_PORT.md). The
   models' samples are ``n_bits`` levels shown as pixels ``k 2^(8 - n_bits)``; the real images (training and test)
   are quantized the same way before their features are taken, so FID compares the model with the data it was
   trained on rather than also charging it for the 8-bit detail it never saw.
3. **Bits/dim** of every test image at the presets' n_bits (3, the reference's ``--quantize`` default).

Inception features are cached under ``--out/features`` (written whole, then renamed), so a killed run resumes.
Writes the section "## NIF vs NF on Fashion-MNIST (NIF paper, tables 1 and 2)" of docs/RESULTS.md and
docs/figures/fmnist_nf_vs_nif.png.

Usage:

    python benchmarks/fmnist_nf_vs_nif.py [--samples 10000] [--sweep_samples 1000] [--inception_dtype float32]
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import (REPO_ROOT, FeatureCache, add_json_argument, check_json_target,  # noqa: E402
                               machine_description, read_json, write_json, write_section)
from zoo import files  # noqa: E402

SECTION_HEADING = "## NIF vs NF on Fashion-MNIST (NIF paper, tables 1 and 2)"
OLD_SECTION_HEADING = "## Fashion-MNIST: small NF vs NIF"  # this script's earlier, 2-epoch version
# Cunningham et al., "Normalizing Flows Across Dimensions", table 1 (FID) and table 2 (bits/dim), Fashion-MNIST.
PAPER = {"nf": (42.77, 1.518), 64: (23.97, 1.506), 128: (23.23, 1.506), 256: (24.84, 1.515), 512: (25.34, 1.523)}
BF16_NOTE = ("bfloat16 (`mixed_bfloat16`; measured against float32 on 1,000 Fashion-MNIST images: FID 23.180 vs "
             "23.251, docs/BENCHMARKS.md)")
MODELS = ("nf_fmnist_small", "nif_fmnist_small_64", "nif_fmnist_small_128")


def quantized(images, n_bits):
    """8-bit images as an ``n_bits`` model represents them (levels ``k`` shown as pixels ``k 2^(8 - n_bits)``)."""
    import layers

    return np.asarray(layers.pixels_from_levels(layers.quantize_pixels(images, n_bits), n_bits))


def grid_label(args):
    return "std factor g (noise_scale = g^2)" if args.sweep_units == "std" else "noise_scale s (variance factor)"


def size_vs_paper(name):
    """(parameters, training FLOPs per image) of the paper-size preset (``nf_fmnist``) over those of ``name``."""
    from zoo.presets import registry

    with open(os.path.join(REPO_ROOT, "zoo", "presets", "compute.json")) as f:
        flops = {k: v["train_flops_per_example"] for k, v in json.load(f).items()}
    return (registry.count_parameters("nf_fmnist") / registry.count_parameters(name),
            flops["nf_fmnist"] / flops[name])


def paper_row(name, model):
    """The paper's (FID, bits/dim) for the NF or the NIF of the preset's latent size."""
    from zoo.presets import registry

    return PAPER["nf"] if not model.has_observation_noise else PAPER.get(registry.preset(name).latent_dim, (None, None))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="shipped presets (the same GLOW)")
    parser.add_argument("--samples", type=int, default=10000, help="samples and test images of the test-set FID")
    parser.add_argument("--sweep_samples", type=int, default=1000, help="samples and training images per sweep FID")
    parser.add_argument("--sweep_points", type=int, default=15)
    parser.add_argument("--sweep_max", type=float, default=1.2)
    parser.add_argument("--sweep_units", choices=("std", "variance"), default="std",
                        help="std: the grid is a standard-deviation factor as in the authors' sampler (noise_scale = "
                             "value^2); variance: the grid is noise_scale itself (the paper's text)")
    add_json_argument(parser, "fmnist_nf_vs_nif")
    parser.add_argument("--seed", type=int, default=0, help="training subsample and sweep samples: seed; test "
                                                            "samples: seed + 1")
    parser.add_argument("--inception_dtype", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "runs", "fmnist_nf_vs_nif"))
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "RESULTS.md"))
    parser.add_argument("--figure", default=os.path.join(REPO_ROOT, "docs", "figures", "fmnist_nf_vs_nif.png"))
    args = parser.parse_args()
    wall_start = time.time()
    if args.json:
        check_json_target(args.json, "fmnist_nf_vs_nif")  # before the hour of FID, not after

    import zoo
    from zoo.evaluation import fid_inception, model_metrics, pictures
    from zoo.evaluation import metrics as metric_lib
    from zoo.presets import shipped

    train, _ = zoo.datasets.load("fmnist", "train")
    test, _ = zoo.datasets.load("fmnist", "test")
    if args.samples > len(test):
        parser.error(f"--samples {args.samples} exceeds the {len(test)} test images")
    models = {name: zoo.get(name, weights="default") for name in args.models}
    n_bits = sorted({model.n_bits for model in models.values()})
    if len(n_bits) != 1:
        parser.error(f"the models use different n_bits {n_bits}; FID against one quantization of the real images "
                     "needs one. Compare models of equal n_bits.")
    n_bits = n_bits[0]
    subsample = quantized(train[np.random.default_rng(args.seed).permutation(len(train))[:args.sweep_samples]], n_bits)
    test = quantized(test[:args.samples], n_bits)
    inception = fid_inception.load_inception_for_fid(dtype=args.inception_dtype)
    tag = f"{args.inception_dtype}"
    cache = FeatureCache(os.path.join(args.out, "features"), inception, extractor=tag)
    train_features = cache(f"train_subsample_{args.sweep_samples}_seed{args.seed}_{tag}", lambda: subsample)
    test_features = cache(f"test_first_{args.samples}_{tag}", lambda: test)
    grid = [float(s) for s in np.linspace(0.0, args.sweep_max, args.sweep_points)]
    scales = [g * g for g in grid] if args.sweep_units == "std" else grid  # noise_scale: the variance factor

    results = {}
    for name in args.models:
        model = models[name]
        card = shipped.card(name)
        if card is None:
            parser.error(f"{name} has no shipped weights: train it with "
                         f"`python benchmarks/ship_weights.py --only {name}`")
        row = {"parameters": model.count_params(), "noisy": model.has_observation_noise,
               "epochs": len(card.get("training", {}).get("curve", [])),
               "paper": paper_row(name, model), "train_seconds": card["training"].get("wall_seconds"),
               "train_machine": (card.get("machine") or {}).get("cpu_model", "not recorded"),
               "train_settings": card["training"].get("settings", {}),
               "size_vs_paper": size_vs_paper(name)}
        start = time.time()
        row["bits_per_dim"] = model_metrics.bits_per_dim(model, test)
        print(f"{name}: bits/dim {row['bits_per_dim']['value']:.4f} ({time.time() - start:.0f} s)", flush=True)

        def fid_of(key_suffix, count, seed, reference, noise_scale):
            features = cache(f"{name}_{key_suffix}_{tag}", lambda: model_metrics.draw_samples(
                model, count, temperature=1.0, noise_scale=noise_scale, seed=seed))
            return float(metric_lib.frechet_distance_from_features(reference, features))

        if model.has_observation_noise:
            row["sweep"] = [(s, fid_of(f"sweep_s{s:.4f}_n{args.sweep_samples}_seed{args.seed}", args.sweep_samples,
                                       args.seed, train_features, s)) for s in scales]
            row["s_star"] = min(row["sweep"], key=lambda p: p[1])[0]
            test_scales = [row["s_star"]]
        else:
            row["sweep"] = [(None, fid_of(f"sweep_n{args.sweep_samples}_seed{args.seed}", args.sweep_samples,
                                          args.seed, train_features, None))]
            test_scales = [None]
        row["test_fid"] = {s: fid_of(f"test_s{s if s is None else f'{s:.4f}'}_n{args.samples}_seed{args.seed + 1}",
                                     args.samples, args.seed + 1, test_features, s) for s in test_scales}
        row["pictures"] = {s: model_metrics.draw_samples(model, 12, noise_scale=s, seed=args.seed + 1)
                           for s in ([None] if not model.has_observation_noise else [0.0, row["s_star"], 1.0])}
        results[name] = row
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k not in ('pictures', 'bits_per_dim')})}",
              flush=True)

    args.n_bits = n_bits
    draw_figure(results, args, pictures)
    machine = machine_description()
    wall = time.time() - wall_start
    if args.json:
        write_json(args.json, {"arguments": {k: v for k, v in vars(args).items()}, "machine": machine,
                               "wall_seconds": wall, "date": time.strftime("%Y-%m-%d"),
                               "features_reused": cache.reused,
                               "features_computed": cache.computed, "results": {
                                   name: {k: v for k, v in row.items() if k != "pictures"}
                                   for name, row in results.items()}}, "fmnist_nf_vs_nif")
    write_results(results, args, parser, machine, wall, len(subsample), len(test), cache)


def draw_figure(results, args, pictures):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(args.figure), exist_ok=True)
    rows, labels = [], []
    for name, row in results.items():
        for s, images in row["pictures"].items():
            rows.append(list(images))
            labels.append(f"{name}" + ("" if s is None else f", s = {s:.2f}"))
    grid = pictures.tile_images(rows, scale=2)
    figure = plt.figure(figsize=(12, 4.5), dpi=100)
    axis = figure.add_axes([0.06, 0.12, 0.27, 0.8])
    for name, row in results.items():
        if row["noisy"]:
            shown = [(np.sqrt(s) if args.sweep_units == "std" else s, v) for s, v in row["sweep"]]
            axis.plot(*zip(*shown), marker="o", ms=3, label=name)
        else:
            axis.axhline(row["sweep"][0][1], color="k", ls="--", label=f"{name} (no noise)")
    axis.set_xlabel(grid_label(args) + "; 1 = trained")
    axis.set_ylabel(f"FID, {args.sweep_samples} samples vs {args.n_bits}-bit training images")
    axis.legend(fontsize=8)
    images = figure.add_axes([0.52, 0.02, 0.47, 0.96])
    images.imshow(grid, cmap="gray", vmin=0, vmax=255)
    images.set_yticks([2 + 2 * 28 * (i + 0.5) + 2 * i for i in range(len(labels))])
    images.set_yticklabels(labels, fontsize=8)
    images.set_xticks([])
    with files.staged_file(args.figure, overwrite=True) as staged:
        figure.savefig(staged)
    plt.close(figure)


def cache_note(cache):
    """What the wall time leaves out: Inception features read back from earlier runs on identical images."""
    if not cache.reused:
        return ""
    total = len(cache.reused) + len(cache.computed)
    images = sum(cache.reused_images.values())
    return (f"; {len(cache.reused)} of the {total} Inception feature sets were read from this machine's cache of "
            "earlier runs on byte-identical images (see the module docstring), so a cold run takes longer"
            + (f": it also passes those {images:,} images through the Inception" if images else ""))


def training_text(results):
    """The shipped models' optimizer schedule, read from their cards (one phrase when they agree)."""
    def phrase(settings):
        final = settings.get("final_learning_rate_fraction") or 0
        parts = [f"peak rate {settings['learning_rate']:g}",
                 (f"{settings['decay']} decay to " + ("0" if not final else f"{final:g} x the peak"))
                 if settings.get("decay") else "no decay"]
        if settings.get("warmup_steps"):
            parts.append(f"a {settings['warmup_steps']}-step warm-up")
        if settings.get("global_clipnorm"):
            parts.append(f"gradients clipped to global norm {settings['global_clipnorm']:g}")
        return ", ".join(parts)

    phrases = {phrase(r["train_settings"]) for r in results.values() if r.get("train_settings")}
    return "; ".join(sorted(phrases)) if phrases else "the schedule in each card"


def write_results(results, args, parser, machine, wall_seconds, subsample_count, test_count, cache):
    command = "python benchmarks/fmnist_nf_vs_nif.py" + "".join(
        f" --{k} {getattr(args, k)}" for k in ("samples", "sweep_samples", "sweep_points", "sweep_max", "seed",
                                              "inception_dtype") if getattr(args, k) != parser.get_default(k))
    if args.models != list(MODELS):
        command += " --models " + " ".join(args.models)
    ratio = size_vs_paper("nf_fmnist_small") if "nf_fmnist_small" in results else next(
        iter(results.values()))["size_vs_paper"]
    lines = [
        SECTION_HEADING, "",
        f"Command: `{command}` ({wall_seconds / 60:.0f} min of evaluation on {machine['cpu_model']}, "
        f"{machine['usable_cpus']} CPUs, no GPU; TensorFlow {machine.get('tensorflow')}, Keras {machine.get('keras')}; "
        f"{time.strftime('%Y-%m-%d')}{cache_note(cache)}). The models are the shipped presets, trained by "
        "`python benchmarks/ship_weights.py` (the training command, curve and wall time of each are in its card, "
        "docs/MODEL_CARDS.md): the same CPU-sized GLOW for all (2 levels x 4 steps x 32 channels; the paper's is "
        "16 steps x 256 channels), Adam (" + training_text(results) + ") over the listed epochs of the 60,000 "
        "training images, batch 64, seed 0 (the rate decays to 0, so the curves end flat by construction; the validation images are "
        "the test split); the budget, not the method, chose that size: the "
        f"paper's GLOW (`nf_fmnist`) has {ratio[0]:.0f} times the parameters and {ratio[1]:.0f} times the training "
        "FLOPs per image (XLA's count, zoo/presets/compute.json).", "",
        "Protocol (the paper's section 5.2 and the authors' released code): the NIF's noise scale s (the variance "
        "factor of its observation noise, x ~ N(A z + b, s Sigma), the paper's text) is chosen by FID on training "
        f"data: {args.sweep_samples} samples at temperature 1 (sample seed {args.seed}) against {subsample_count} "
        f"training images drawn at random (seed {args.seed}), at {args.sweep_points} values of the "
        f"{grid_label(args)} in [0, {args.sweep_max:g}]"
        + (" (the authors' sampler scales unit noise by a standard-deviation factor, without Sigma and b, so their "
           "grid of 15 values in [0, 1.2] is in these units; the NIFs here learned Sigma close to I)"
           if args.sweep_units == "std" else "") + ". "
        f"The test FID is then computed between {args.samples:,} fresh samples (temperature 1, sample seed "
        f"{args.seed + 1}) and the first {test_count:,} test images (the authors' code: 25,000 samples, most likely "
        "against statistics of all 70,000 images; FID falls as the sample count grows, so compare the counts before "
        f"the numbers). The samples are {args.n_bits}-bit levels shown as pixels k x {2 ** (8 - args.n_bits)}, so the "
        "real images (training subsample and test) are quantized the same way first; the authors compare "
        "continuous samples with 8-bit images, through an image file each. Feature extractor: the project's port of "
        "the 2015 Inception (pool3, 2048-d; docs/FID_PORT.md) with its trunk computing in "
        f"{BF16_NOTE if args.inception_dtype == 'mixed_bfloat16' else 'float32'}. "
        f"Bits/dim: every test image, n_bits {args.n_bits} (the reference's `--quantize` default: 3), NIF at s = 1 "
        "(its trained density, the paper's text; the authors' evaluation script instead tunes s on their test "
        "split), uniform dequantization with a fixed seed.", "",
        f"| model | parameters | epochs (train s, machine) | bits/dim (n_bits {args.n_bits}, ± s.e.) | paper bits/dim | "
        "s* (noise_scale, by "
        f"training FID) | FID at s* ({args.samples:,} vs {args.n_bits}-bit test) | paper FID |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results.items():
        bpd = row["bits_per_dim"]
        paper_fid, paper_bpd = row["paper"]
        if row["noisy"]:
            cells = [f"{row['s_star']:.3f}" + (f" (g* = {np.sqrt(row['s_star']):.3f})" if args.sweep_units == "std"
                                                else ""), f"{row['test_fid'][row['s_star']]:.1f}"]
        else:
            cells = ["n/a (no noise)", f"{row['test_fid'][None]:.1f} (its samples)"]
        train_seconds = "not recorded" if row.get("train_seconds") is None else f"{row['train_seconds']:.0f}"
        lines.append(f"| `{name}` | {row['parameters']:,} | {row['epochs']} ({train_seconds}, "
                     f"{row.get('train_machine', 'not recorded')}) | "
                     f"{bpd['value']:.3f} ± "
                     f"{bpd['standard_error']:.3f} | {paper_bpd} | " + " | ".join(cells) + f" | {paper_fid} |")
    lines += ["", f"Training-data FID ({args.sweep_samples} samples) against s, the data of the figure's left panel:",
              "", f"Columns: the {grid_label(args)}.", "",
              "| model | " + " | ".join(f"{g:.3f}" for g in np.linspace(0, args.sweep_max, args.sweep_points))
              + " |", "| --- |" + " ---: |" * args.sweep_points]
    lines += [f"| `{name}` | " + " | ".join(f"{v:.1f}" for _, v in row["sweep"]) + " |"
              for name, row in results.items() if row["noisy"]]
    lines += ["", "The same training-data FID of the NF's samples (no noise to scale): " + ", ".join(
        f"`{name}` {row['sweep'][0][1]:.1f}" for name, row in results.items() if not row["noisy"]) + ".",
        "", verdict(results), "", bits_per_dim_convention(results), "",
              f"![NIF vs NF on Fashion-MNIST]({os.path.relpath(args.figure, os.path.dirname(args.doc))})", "",
              "Figure: left, the training-data FID against s (the NF, which has no noise, as a line); right, 12 "
              f"samples per row at temperature 1 (sample seed {args.seed + 1}): the NF, then each NIF on its "
              "manifold (s = 0), at s* and at s = 1.", ""]
    section = "\n".join(lines)
    write_section(args.doc, SECTION_HEADING, section)
    remove_section(args.doc, OLD_SECTION_HEADING)
    print(section)


def bits_per_dim_convention(results):
    """How to read the bits/dim column against the paper's: the convention as checked in the authors' code
    (Information-Fusion-Lab-Umass/NoisyInjectiveFlows at 6d1430f: datasets.py, train_runner.py,
    normalizing_flows.py, evaluate_experiments.py), and the measured gap."""
    gaps = [row["paper"][1] - row["bits_per_dim"]["value"] for row in results.values() if row["paper"][1] is not None]
    if not gaps:
        return "Bits/dim: no model here has a number in the paper to compare with."
    return ("Bits/dim against the paper's: the authors' released code computes the same quantity as ours "
            "(28x28x1 images without padding, quantized to 3 bits, uniform dequantization with the -D n_bits ln 2 "
            "term, logit preprocessing with lambda = 0.05 and its log-determinant, bits/dim = -mean log-likelihood "
            "/ (784 ln 2)); the paper's text does not state n_bits, the code's default has been 3 since May 2020, and "
            "where its evaluation tunes s on its test split we score the trained density (s = 1). What differs is "
            "the split (the reference trains on the first 42,000 training "
            "images and reports on 14,000: training images 56,000-59,999 plus the 10,000 test images; we train on "
            "all 60,000 and report on the 10,000 test images) and the models and their training. So our bits/dim, "
            f"{min(gaps):.2f}-{max(gaps):.2f} {'below' if min(gaps) > 0 else 'from'} the paper's, are not explained "
            "by a difference of units that we found; which of the differences makes the gap is not measured ("
            + anchor_gap_text() + "). Within this table all models share the split and the convention, which is what "
            "the verdict compares.")


def anchor_gap_text(path=os.path.join(REPO_ROOT, "benchmarks", "results", "bits_per_dim_anchors",
                                      "bits_per_dim_anchors.json")):
    """How far the same small GLOW is from the published Glow on 8-bit MNIST, from the anchors' stored results."""
    record = read_json(path, "bits_per_dim_anchors") if os.path.exists(path) else None
    if not record or "mnist" not in record.get("rows", {}):
        return "for the same small GLOW against the published Glow on 8-bit MNIST see the anchors section"
    gap = record["rows"]["mnist"]["bits_per_dim"]["value"] - record["published_mnist"]["Glow (Kingma & Dhariwal 2018)"]
    model = ("the same small GLOW" if record.get("preset", "nf_fmnist_small") == "nf_fmnist_small"
             else f"the GLOW of `{record['preset']}`")
    return (f"{model} is {gap:.2f} bits/dim behind the published Glow on 8-bit MNIST, "
            f"{os.path.relpath(path, REPO_ROOT)}, see the anchors section")


def verdict(results):
    nf = [r for r in results.values() if not r["noisy"]]
    nifs = {n: r for n, r in results.items() if r["noisy"]}
    if not nf or not nifs:
        return "Verdict: needs the NF and at least one NIF."
    nf = nf[0]
    nf_fid, nf_bpd = nf["test_fid"][None], nf["bits_per_dim"]["value"]
    parts = []
    for name, row in nifs.items():
        fid = row["test_fid"][row["s_star"]]
        parts.append(f"`{name}` FID {fid:.1f} vs the NF's {nf_fid:.1f} ({(fid - nf_fid) / nf_fid:+.0%}) at "
                     f"{row['bits_per_dim']['value'] - nf_bpd:+.3f} bits/dim")
    lower = all(r["test_fid"][r["s_star"]] < nf_fid for r in nifs.values())
    paper = ", ".join(f"NIF-{d} {(PAPER[d][0] - PAPER['nf'][0]) / PAPER['nf'][0]:+.0%} at "
                      f"{PAPER[d][1] - PAPER['nf'][1]:+.3f} bits/dim" for d in (64, 128))
    return ("Verdict (NIF paper, tables 1-2: NIF's FID clearly below the NF's at about the same bits/dim; the paper: "
            f"{paper}): " + ("reproduced qualitatively: " if lower else "not reproduced: ") + "; ".join(parts) + ". "
            + ("Every NIF's FID is below the NF's, with bits/dim no worse"
               if lower and all(r["bits_per_dim"]["value"] <= nf_bpd for r in nifs.values()) else
               "Every NIF's FID is below the NF's" if lower else "Not every NIF's FID is below the NF's")
            + ", at this model size and budget (one training run and one sample seed per model: the spread over "
            "runs is not measured"
            + ("" if len({r["epochs"] for r in results.values()}) == 1 else
               "; the models were not trained equally long (epochs " + ", ".join(
                   f"`{n}` {r['epochs']}" for n, r in results.items())
               + "), so part of the difference may be the budget's, not the method's")
            + "); the absolute FIDs are far above the paper's, for reasons not measured here: the GLOW is about "
            f"{nf['size_vs_paper'][1]:.0f} times cheaper per image and trained for minutes (the budget), fewer "
            "samples raise FID, and the real images here are quantized to the models' n_bits where the authors "
            "compare with 8-bit images (the protocol above).")


def remove_section(path, heading):
    import re

    with open(path) as f:
        text = f.read()
    pattern = re.compile(r"^" + re.escape(heading) + r"[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        with files.staged_file(path, overwrite=True) as staged, open(staged, "w") as f:
            f.write(pattern.sub("", text, count=1).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
