"""benchmarks/intrinsic_dimension.py's MNIST bookkeeping: which stored run the verdict reads, and how runs stored
before a setting was recorded are labelled (the flows' training is the library's, tested elsewhere)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import intrinsic_dimension as bench  # noqa: E402

FLOOR = 1e-4


def _run(d, steps, gap, vae_epochs=3, vae_learning_rate=None, image_size=16, activation=None):
    """A stored synthetic-MNIST run whose final spectrum has d eigenvalues of 0.1, then a step down by ``gap``."""
    eigenvalues = [0.1] * d + [0.1 / gap] * (image_size * image_size - d)
    run = {"experiment": f"mnist{d}_{steps}_{vae_epochs}", "base": f"mnist{d}", "true_dimension": d,
           "image_size": image_size, "learning_rate": 5e-4, "weight_decay": 0.0, "vae_epochs": vae_epochs,
           "steps": steps, "expected_steps": steps, "trace_every": steps, "train_seconds": 1.0, "wall_seconds": 2.0,
           "final_data_noise": 0.01, "spread_variance": FLOOR, "eigenvalues": eigenvalues,
           "intrinsic_dimension_rule": d if gap >= 10 else len(eigenvalues), "levina_bickel_mle_k20": float(d),
           "trace": [{"step": 0, "data_noise": 0.05, "eigenvalues": [1.0] * len(eigenvalues)},
                     {"step": steps, "data_noise": 0.01, "eigenvalues": eigenvalues}],
           "figure": f"spread_mnist{d}.png"}
    if vae_learning_rate is not None:
        run["vae_learning_rate"] = vae_learning_rate
    if activation is not None:
        run["conditioner_activation"] = activation
    return run


def test_verdict_reads_the_run_on_the_papers_implicit_model_before_a_longer_one():
    results = {"five": _run(5, 24000, gap=16.0),
               "ten_long": _run(10, 60000, gap=1.4),  # stored before the VAE rate was recorded: 3 epochs at 1e-3
               "ten_paper": _run(10, 24000, gap=12.0, vae_epochs=100, vae_learning_rate=1e-4)}
    results["ten_paper"]["implicit_model"] = {"decoder_sq_singular_values": [6.28] + [1.0] * 8 + [0.168],
                                              "active_units": 10}
    text = bench.mnist_verdict(results)
    assert ("(median squared singular values of dg/dz 6.28 down to 0.168, 10 of 10 latent units active; the flow's "
            "lambda_1 / lambda_d = 1 against g's s_1^2 / s_d^2 = 37)") in text
    assert "Verdict" in text and "): reproduced qualitatively. d = 5: the gap is at d in `five`, which differs " in text
    assert ("d = 10: the gap is at d in `ten_paper`, which differs from the paper in 16x16 images, relu conditioners "
            "(the paper's: leaky_relu).") in text
    assert "implicit model 100 epochs at 0.0001 (the paper's)" in text
    assert "implicit model 3 epochs at 0.001, learning rate" in text  # the legacy run, still described
    del results["ten_paper"]  # without it the longest run is judged
    text = bench.mnist_verdict(results)
    assert "): not reproduced. " in text
    assert ("d = 10: no gap at d by the rule (a ratio >= 10), though the largest ratio in the top 30 is at d "
            "(lambda_d / lambda_d+1 = 1.40) in `ten_long`") in text
    results["ten_long"]["eigenvalues"][3] = 0.001  # now the largest ratio in the top 30 is after rank 3, not d
    assert "d = 10: no gap at d in `ten_long`" in bench.mnist_verdict(results)


def test_section_labels_each_runs_implicit_model_and_gives_its_command():
    results = {"five": _run(5, 24000, gap=16.0),
               "ten_paper": _run(10, 24000, gap=12.0, vae_epochs=100, vae_learning_rate=1e-4, activation="leaky_relu")}
    results["five"]["machine"] = {"cpu_model": "test CPU", "usable_cpus": 2, "tensorflow": "x", "keras": "y"}
    text = bench.mnist_section(results)
    assert ("Machines: five on test CPU, 2 usable cores (TF x, Keras y); ten_paper: not recorded, stored before runs "
            "recorded their machine; each shared with other jobs.") in text
    assert "| dim(z) = 5 | 16x16 | relu | 0.0005 | 0 | 3 (0.001) | 24000 |" in text  # stored before the keys
    assert "| dim(z) = 10 | 16x16 | leaky_relu | 0.0005 | 0 | 100 (0.0001) | 24000 |" in text
    assert "--conditioner_activation relu" in text  # the stored run's, not the default
    assert "--vae_epochs 100 --vae_learning_rate 0.0001" in text
    assert "--vae_epochs 3 --vae_learning_rate 0.001" in text
    assert bench._paper_vae(results["ten_paper"]) and not bench._paper_vae(results["five"])


def test_verdict_prefers_the_papers_conditioners_at_equal_implicit_model():
    paper_vae = dict(vae_epochs=100, vae_learning_rate=1e-4)
    results = {"five": _run(5, 24000, gap=16.0),
               "ten_relu": _run(10, 60000, gap=12.0, activation="relu", **paper_vae),
               "ten_leaky": _run(10, 24000, gap=1.3, activation="leaky_relu", **paper_vae)}
    assert "): not reproduced. " in bench.mnist_verdict(results)  # the leaky run is judged, though shorter
    results["ten_leaky"]["conditioner_activation"] = "relu"
    assert "): reproduced qualitatively. " in bench.mnist_verdict(results)  # now the longer one


def test_verdict_says_reproduced_only_at_the_papers_setting():
    paper = dict(vae_epochs=100, vae_learning_rate=1e-4, image_size=28, activation="leaky_relu")
    results = {"five": _run(5, 24000, gap=16.0, **paper), "ten": _run(10, 24000, gap=12.0, **paper)}
    text = bench.mnist_verdict(results)
    assert "): reproduced. d = 5: the gap is at d in `five`, at the paper's setting; d = 10: " in text


def test_counts_come_from_the_values_stored_before_rounding():
    run = _run(5, 24000, gap=16.0)
    run["eigenvalues"] = [0.1] * 5 + [1e-3] + [1e-5] * 250  # 1e-3 is exactly 10 sigma_Z^2 once rounded
    run["trace"][-1]["eigenvalues"] = run["eigenvalues"]
    assert bench._facts(run)["count_above_10_floor"] == 5  # a recount of the rounded values
    run["count_above_10_floor"] = 6  # what the run counted before rounding (lambda_6 was 1.00004e-3)
    assert bench._facts(run)["count_above_10_floor"] == 6
    assert bench._facts(run, run["trace"][-1])["count_above_10_floor"] == 6  # the final record is that spectrum
    assert bench._facts(run, run["trace"][0])["count_above_10_floor"] == 256
    stored = bench.compact(dict(run, trace=[{"step": 0, "data_noise": 0.05,
                                             "eigenvalues": [0.1] * 5 + [1.00004e-3] + [1e-5] * 250}]))
    assert stored["trace"][0]["eigenvalues"][5] == 1e-3 and stored["trace"][0]["count_above_10_floor"] == 6


def test_fading_square_command_reproduces_the_stored_settings():
    assert bench.fading_square_command({}) == "python benchmarks/intrinsic_dimension.py --experiments fading_square"
    stored = {"requested_steps": 2000, "budget_seconds": 100000.0}
    assert bench.fading_square_command(stored) == ("python benchmarks/intrinsic_dimension.py --experiments "
                                                   "fading_square --steps 2000 --budget_seconds 100000")


def test_one_verdict_on_the_paper_from_both_sections():
    vector = {name: {"true_dimension": d, f"spread_{name}": {"intrinsic_dimension": d}}
              for name, d in (("sin", 1), ("scurve", 2), ("fading_square", 1))}
    paper = dict(vae_epochs=100, vae_learning_rate=1e-4, image_size=28, activation="leaky_relu")
    images = {"five": _run(5, 24000, gap=16.0, **paper), "ten": _run(10, 24000, gap=12.0, **paper)}
    assert bench.paper_verdict(vector, images).startswith(
        "Verdict on the latent-space paper (sections 7.1-7.4): reproduced: sections 7.1-7.3 reproduced; section 7.4 "
        "reproduced")
    images["ten"] = _run(10, 24000, gap=1.3, **paper)
    assert ": not reproduced: sections 7.1-7.3 reproduced; section 7.4 not reproduced" in (
        bench.paper_verdict(vector, images))
    vector["scurve"]["spread_scurve"]["intrinsic_dimension"] = 3
    assert "7.1-7.4): not reproduced: " in bench.paper_verdict(vector, images)


def test_a_count_from_rounded_values_on_the_threshold_is_shown_as_a_range():
    run = _run(5, 24000, gap=16.0)
    middle = [0.1] * 5 + [10 * FLOOR] + [FLOOR / 2] * 250  # one value rounded onto 10 sigma_Z^2: 5 or 6 above it
    run["trace"].insert(1, {"step": 12000, "data_noise": 0.02, "eigenvalues": middle})
    rows = bench._trace_rows(run)
    assert rows[1].startswith("| 12000 | 0.020 | 5-6 | 6 |")
    run["trace"][1]["count_above_10_floor"] = 6  # stored before rounding: exact
    assert bench._trace_rows(run)[1].startswith("| 12000 | 0.020 | 6 | 6 |")


def _with_trace(run, ratios):
    """``run`` with trace records at 70%, 85% and 100% of its steps whose lambda_d / lambda_d+1 are ``ratios``."""
    d, size = run["true_dimension"], len(run["eigenvalues"])
    run["trace"] = [{"step": 0, "data_noise": 0.05, "eigenvalues": [1.0] * size}] + [
        {"step": int(fraction * run["steps"]), "data_noise": 0.01,
         "eigenvalues": [0.1] * d + [0.1 / ratio] * (size - d)} for fraction, ratio in zip((0.7, 0.85, 1.0), ratios)]
    return run


def test_budget_or_method_reads_the_trend_at_the_end_of_each_judged_run():
    names = {}
    rising = _with_trace(_run(5, 20000, gap=6.0), [5.0, 5.02, 6.0])
    flat = _with_trace(_run(10, 20000, gap=1.31), [1.30, 1.305, 1.31])
    falling = _with_trace(_run(10, 20000, gap=1.2), [1.4, 1.3, 1.2])
    for name, run in (("rising", rising), ("flat", flat), ("falling", falling)):
        names[id(run)] = name
    text = bench.steps_text([rising, flat, falling], [rising, flat, falling], names)
    assert "`rising` was 5.00, 5.02, 6.00 at steps 14000, 17000, 20000, still rising (+19.5% over the last 3000" in text
    assert "`flat` was 1.30, 1.30, 1.31 at steps 14000, 17000, 20000, flattening (+0.4% over the last 3000 steps)" in text
    assert "`falling` was 1.40, 1.30, 1.20 at steps 14000, 17000, 20000, not rising when the run ended" in text


def test_more_steps_compares_only_runs_that_differ_in_their_steps():
    short, long = _run(10, 24000, gap=1.41), _run(10, 60000, gap=1.36)
    names = {id(short): "short", id(long): "long"}
    text = bench.steps_text([], [short, long], names)
    assert ("2.5x the steps (the schedules stretched to them), everything else equal (`long` against `short`, "
            "d = 10), took lambda_d / lambda_d+1 from 1.41 to 1.36: more steps alone did not open the gap") in text
    long["learning_rate"] = 1e-3  # another setting: not a steps comparison
    assert bench.steps_text([], [short, long], names) == ""
