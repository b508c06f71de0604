"""benchmarks/gram_timing.py: the growth sentence follows the measured rows; the section renders from its results."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import gram_timing  # noqa: E402
from benchmarks.common import REPO_ROOT  # noqa: E402


def _rows(mflow):
    return [{"d": d, "mflow_seconds": t, "dnf_seconds": 0.03, "ratio": t / 0.03, "points": 500} for d, t in mflow]


def test_linear_growth_is_claimed_only_when_the_increments_agree():
    linear = gram_timing.growth_text(_rows([(1, 0.10), (8, 0.80), (32, 3.2), (64, 6.4)]))
    assert "measured: 100 ms (d = 1 to 8), 100 ms (d = 8 to 32), 100 ms (d = 32 to 64), within 1.0x" in linear
    assert "about linear in d" in linear
    uneven = gram_timing.growth_text(_rows([(1, 0.108), (8, 0.750), (32, 5.065), (64, 5.742)]))
    assert "92 ms (d = 1 to 8), 180 ms (d = 8 to 32), 21 ms (d = 32 to 64), 8.5x apart" in uneven
    assert "does not show linear growth" in uneven and "about linear" not in uneven
    falling = gram_timing.growth_text(_rows([(1, 0.2), (8, 0.1)]))
    assert "not all positive" in falling


def test_render_only_rewrites_the_section_from_the_results_file(tmp_path):
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n\n## Other\n\nkept\n")
    stored = os.path.join(REPO_ROOT, "benchmarks", "results", "gram_timing", "gram_timing.json")
    run = subprocess.run([sys.executable, "benchmarks/gram_timing.py", "--render_only", "--doc", str(doc)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    text = doc.read_text()
    assert "## Other\n\nkept" in text and gram_timing.SECTION_HEADING in text
    with open(stored) as f:
        payload = json.load(f)
    for row in payload["rows"]:
        assert f"| {row['d']} | {row['mflow_seconds']:.3f} | {row['dnf_seconds']:.3f} |" in text
    foreign = tmp_path / "other.json"
    foreign.write_text(json.dumps({"benchmark": "thin_spiral"}))
    run = subprocess.run([sys.executable, "benchmarks/gram_timing.py", "--render_only", "--json", str(foreign),
                          "--doc", str(doc)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "is not a results file of gram_timing.py" in run.stderr
