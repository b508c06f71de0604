r"""Bits/dim anchors of the NF baseline at 8 bits: the zoo's CPU-sized GLOW on MNIST and Fashion-MNIST.

Trains ``--preset``'s GLOW (by default ``nf_fmnist_small``: 2 levels x 4 steps x 32 channels, the NF of
``make demo``) with ``n_bits=8`` through ``zoo.training.train`` (checkpoints in ``--out/<dataset>``, so a killed
run resumes with ``--resume``), on the 60,000 training images of each dataset for ``--epochs`` (cosine decay to 0,
so the validation curve ends flat), then measures bits/dim on all 10,000 test images. Writes the section
"## Bits/dim anchors: GLOW at 8 bits" of docs/RESULTS.md with the published MNIST numbers beside it.

Usage:

    python benchmarks/bits_per_dim_anchors.py [--datasets mnist fmnist] [--epochs 20] [--resume]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import (REPO_ROOT, add_json_argument, check_json_target, machine_description,  # noqa: E402
                               write_json, write_section)

SECTION_HEADING = "## Bits/dim anchors: GLOW at 8 bits"
# Published test bits/dim on MNIST at 8 bits (uniform dequantization), as collected in the FFJORD paper's table 2.
PUBLISHED_MNIST = (("RealNVP (Dinh et al. 2017)", 1.06), ("Glow (Kingma & Dhariwal 2018)", 1.05),
                   ("FFJORD (Grathwohl et al. 2019)", 0.99))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fmnist"], choices=("mnist", "fmnist"))
    parser.add_argument("--preset", default="nf_fmnist_small", help="a 28x28x1 NF preset; trained at n_bits 8")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_examples", type=int, default=None, help="first N training images (default: all)")
    parser.add_argument("--resume", action="store_true", help="continue runs found under --out")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "runs", "bits_per_dim_anchors"))
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "RESULTS.md"))
    add_json_argument(parser, "bits_per_dim_anchors")
    args = parser.parse_args()
    if args.json:
        check_json_target(args.json, "bits_per_dim_anchors")  # before the training, not after

    import zoo
    from zoo.evaluation import model_metrics
    from zoo.presets import registry
    from zoo.training import trainer

    rows = {}
    for dataset in args.datasets:
        out = os.path.join(args.out, dataset)
        start = time.time()
        result = trainer.train(model=args.preset, dataset=dataset, epochs=args.epochs, out=out, resume=args.resume,
                               seed=args.seed, model_overrides={"n_bits": 8}, num_examples=args.num_examples,
                               sample_every=0, tensorboard=False, verbose=2)
        seconds = time.time() - start
        test, _ = zoo.datasets.load(dataset, "test")
        bpd = model_metrics.bits_per_dim(result.model, test)
        curve = [(h.get("epoch"), h.get("val_loss")) for h in result.history]
        rows[dataset] = {"bits_per_dim": bpd, "train_seconds": seconds, "steps": result.steps_per_epoch * args.epochs,
                         "resumed_from_step": result.resumed_from_step, "curve": curve,
                         "parameters": result.model.count_params()}
        print(f"{dataset}: {json.dumps(rows[dataset])}", flush=True)

    config = registry.preset(args.preset).kwargs
    machine = machine_description()
    command = "python benchmarks/bits_per_dim_anchors.py" + "".join(
        f" --{k} {getattr(args, k)}" for k in ("preset", "epochs", "seed", "num_examples")
        if getattr(args, k) != parser.get_default(k))
    if args.datasets != parser.get_default("datasets"):
        command += " --datasets " + " ".join(args.datasets)
    with open(os.path.join(REPO_ROOT, "zoo", "presets", "compute.json")) as f:
        flops = json.load(f)
    cheaper = flops["nf_fmnist"]["train_flops_per_example"] / flops[args.preset]["train_flops_per_example"]
    lines = [
        SECTION_HEADING, "",
        f"Command: `{command}` on {machine['cpu_model']}, {machine['usable_cpus']} CPUs, no GPU (TensorFlow "
        f"{machine.get('tensorflow')}, Keras {machine.get('keras')}; {time.strftime('%Y-%m-%d')}). Model: "
        f"`{args.preset}`'s GLOW ({config['num_levels']} levels x {config['steps_per_level']} steps x "
        f"{config['hidden_channels']} channels, unit Gaussian prior; {cheaper:.0f} times fewer training FLOPs per "
        "image than the NIF paper's Fashion-MNIST GLOW `nf_fmnist`, XLA's count) at n_bits 8, trained by "
        f"`zoo.training.train` (Adam, the preset's peak rate with warm-up and cosine decay to 0, batch 64, seed "
        f"{args.seed}) for {args.epochs} epochs of the {args.num_examples or 60000:,} training images; bits/dim of all "
        "10,000 test images "
        "(uniform dequantization with a fixed seed; -log p / (D ln 2) of the 8-bit image, as the literature "
        "reports). The published models are much larger networks trained far longer on GPUs; how much of the gap "
        "below that explains is not measured.", "",
        "| data | parameters | epochs | train wall s | test bits/dim (± s.e.) | validation bits/dim, last 3 epochs | "
        "published (MNIST, 8 bits; as tabulated in the FFJORD paper, table 2) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    published = "; ".join(f"{name} {value}" for name, value in PUBLISHED_MNIST)
    for dataset, row in rows.items():
        tail = ", ".join(f"{v:.3f}" for _, v in row["curve"][-3:] if v is not None)
        resumed = f" (resumed at step {row['resumed_from_step']})" if row["resumed_from_step"] else ""
        lines.append(f"| {dataset} | {row['parameters']:,} | {args.epochs} | {row['train_seconds']:.0f}{resumed} | "
                     f"{row['bits_per_dim']['value']:.3f} ± {row['bits_per_dim']['standard_error']:.3f} | {tail} | "
                     + (published if dataset == "mnist" else "no common 8-bit number; the NIF paper's are at 3 "
                        "bits, its code's default (the paper does not state n_bits; see the NIF section)") + " |")
    if "mnist" in rows:
        gap = rows["mnist"]["bits_per_dim"]["value"] - dict(PUBLISHED_MNIST)["Glow (Kingma & Dhariwal 2018)"]
        lines += ["", f"On MNIST the CPU-trained zoo GLOW is {gap:+.3f} bits/dim from the published Glow."]
        tail = [v for _, v in rows["mnist"]["curve"][-3:] if v is not None]
        moved = "" if len(tail) < 2 else (
            f"its validation bits/dim moved by {max(tail) - min(tail):.3f} over the last {len(tail)} epochs as the "
            "learning rate decayed to 0" + (", so the run ended flat under its schedule; "
                                            if max(tail) - min(tail) < 0.01 else
                                            ", still falling; " if tail[-1] < tail[0] else ", still moving; "))
        lines += ["", "Verdict (the published numbers are anchors for the NF baseline, not a claim of the five papers): "
                  + ("reproduced" if gap <= 0.02 else "not reproduced")
                  + f" at this budget: the zoo's GLOW is {gap:+.3f} bits/dim from the published Glow on MNIST in "
                  "the same units (8-bit images, uniform dequantization, -log2 p per dimension); " + moved
                  + (f"the run is small by choice: {cheaper:.0f} times fewer training FLOPs per image than the NIF "
                     f"paper's GLOW and {args.epochs} epochs, {rows['mnist']['train_seconds'] / 60:.0f} min on "
                     f"{machine['usable_cpus']} CPUs (the issue allows about 60 min per training run); whether its "
                     "size or anything else accounts for the gap, and how much, is not measured."
                     if gap > 0.02 else "the published number is reached.")]
    lines.append("")
    if args.json:
        write_json(args.json, {"command": command, "preset": args.preset, "epochs": args.epochs,
                               "date": time.strftime("%Y-%m-%d"), "machine": machine,
                               "published_mnist": dict(PUBLISHED_MNIST), "rows": rows}, "bits_per_dim_anchors")
    write_section(args.doc, SECTION_HEADING, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
