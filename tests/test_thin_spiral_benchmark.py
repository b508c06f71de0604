"""benchmarks/thin_spiral.py's bookkeeping: each seed's metrics are stored as it finishes, and a rerun of the same
protocol reuses them only after its first seed, recomputed, matches its stored metrics (the models' training and
the metrics are the library's, tested in tests/zoo)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import thin_spiral as bench  # noqa: E402

LABELS = ("NF", "M-flow", "DNF", "PIE")


def _metrics(seed, shift=0.0):
    tv = {"NF": 300.0, "M-flow": 0.4 + 0.01 * seed, "DNF": 0.1 + 0.01 * seed + shift, "PIE": 1.5}
    metrics = {label: {"total_variation": tv[label], "kolmogorov_smirnov": 0.1, "wasserstein_1": 0.05,
                       "learned_mass": 0.9, "train_seconds": 1.0} for label in LABELS}
    metrics["DNF"]["prop1_log_gram_mean_abs_error"] = 0.01
    return metrics


@pytest.fixture
def fake_run(monkeypatch):
    """Replaces the trainings and timings by instant fakes; returns the list of seeds that were 'trained'."""
    import zoo
    from zoo import dnf

    trained, shift = [], {"value": 0.0}

    timing = {"points": 4, "mflow_seconds": 2.0, "dnf_seconds": 1.0, "ratio": 2.0}

    def run_thin_spiral(seed, **_):
        trained.append(seed)
        return {"metrics": _metrics(seed, shift["value"]), "timing": timing}

    class Model:
        def initialize(self, images):
            pass

    monkeypatch.setattr(zoo.experiments.thin_spiral, "run_thin_spiral", run_thin_spiral)
    monkeypatch.setattr(zoo.experiments.thin_spiral, "density_timing", lambda *args: timing)
    monkeypatch.setattr(zoo.experiments.thin_spiral, "plot_thin_spiral", lambda results, path: None)
    monkeypatch.setattr(dnf, "make_image_dnf", lambda *args, **kwargs: Model())
    return trained, shift


def _main(monkeypatch, tmp_path, seeds, epochs=4):
    monkeypatch.setattr(sys, "argv", ["thin_spiral.py", "--epochs", str(epochs), "--timing_points", "4",
                                      "--json", str(tmp_path / "t.json"), "--doc", str(tmp_path / "R.md"),
                                      "--figure", str(tmp_path / "f.png"), "--seeds", *map(str, seeds)])
    bench.main()
    with open(tmp_path / "t.json") as f:
        record = json.load(f)
    return record, (tmp_path / "R.md").read_text()


def test_rerun_reuses_stored_seeds_after_the_first_matches(monkeypatch, tmp_path, fake_run):
    trained, _ = fake_run
    stored, _ = _main(monkeypatch, tmp_path, [0, 1, 2])
    assert trained == [0, 1, 2] and stored["complete"] and stored["reused_seeds"] == []
    record, doc = _main(monkeypatch, tmp_path, [0, 1, 2, 3])
    assert trained == [0, 1, 2, 0, 3]  # the first seed again, then only the new one
    assert record["reused_seeds"] == [1, 2] and record["first_seed_matched_stored"] is True
    assert sorted(record["per_seed"]) == ["0", "1", "2", "3"]
    assert "Seeds 1, 2 were measured by an earlier invocation" in doc
    assert "also trains the reused ones, whose models' training took 8 s when they were measured" in doc  # 2 x 4 x 1 s
    assert "lower in 4 of 4 seeds" in doc


def test_no_reuse_when_the_first_seed_differs_or_the_protocol_changed(monkeypatch, tmp_path, fake_run):
    trained, shift = fake_run
    _main(monkeypatch, tmp_path, [0, 1])
    shift["value"] = 0.01  # the code or the machine now gives other numbers
    record, doc = _main(monkeypatch, tmp_path, [0, 1])
    assert trained == [0, 1, 0, 1] and record["reused_seeds"] == [] and record["first_seed_matched_stored"] is False
    assert "were measured by an earlier invocation" not in doc
    _main(monkeypatch, tmp_path, [0, 1], epochs=6)  # another protocol: nothing stored applies
    assert trained == [0, 1, 0, 1, 0, 1]


def test_protocol_ignores_the_learning_rate_unless_adam():
    arguments = {key: 1 for key in bench.PROTOCOL_KEYS}
    assert "learning_rate" not in bench.protocol_of(dict(arguments, recipe="reference"))
    assert bench.protocol_of(dict(arguments, recipe="adam"))["learning_rate"] == 1
    assert bench.same_metrics(_metrics(0), _metrics(0)) and not bench.same_metrics(_metrics(0), _metrics(0, 1e-3))


def test_a_run_that_fails_keeps_its_finished_seeds(monkeypatch, tmp_path, fake_run):
    trained, _ = fake_run
    import zoo

    working = zoo.experiments.thin_spiral.run_thin_spiral

    def fails_at_seed_2(seed, **kwargs):
        if seed == 2:
            raise RuntimeError("stopped")
        return working(seed=seed, **kwargs)

    monkeypatch.setattr(zoo.experiments.thin_spiral, "run_thin_spiral", fails_at_seed_2)
    with pytest.raises(RuntimeError, match="stopped"):
        _main(monkeypatch, tmp_path, [0, 1, 2])
    with open(tmp_path / "t.json") as f:
        partial = json.load(f)
    assert not partial["complete"] and sorted(partial["per_seed"]) == ["0", "1"]
    monkeypatch.setattr(zoo.experiments.thin_spiral, "run_thin_spiral", working)
    record, _ = _main(monkeypatch, tmp_path, [0, 1, 2])
    assert trained == [0, 1, 0, 2] and record["reused_seeds"] == [1] and record["complete"]


def test_verdict_opens_with_one_word_for_the_paper():
    timing = {"points": 4, "mflow_seconds": 2.0, "dnf_seconds": 1.0, "ratio": 2.0}
    clear = bench._verdict([_metrics(seed) for seed in range(5)], timing, epochs=100, recipe="reference")
    assert "1 s): reproduced qualitatively (the DNF-over-M-flow claim holds over the seeds;" in clear
    assert ("Whether M-flow \"fails\" has no threshold in the paper: here it learns a density on the curve of mass "
            "0.9 of 1 with TV 0.420, 3.5 times the DNF's 0.120; that difference holds over the seeds (above), so what "
            "is measured is the ranking, not an absolute failure.") in clear
    assert "by our reading of the reference code (not timed here)" in clear
    tied = [_metrics(0), _metrics(1, shift=0.6), _metrics(2)]  # M-flow wins one seed by far: no clear difference
    tied_text = bench._verdict(tied, timing, epochs=100, recipe="reference")
    assert "1 s): not reproduced (the DNF-over-M-flow claim is not established" in tied_text
    assert "; over these seeds that difference is not established, so what is measured" in tied_text
    one = bench._verdict([_metrics(0)], timing, epochs=100, recipe="reference")
    assert "1 s): not reproduced" in one and "one seed" in one
