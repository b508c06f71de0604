"""Every colab's code cells run top to bottom against the library (so notebooks cannot rot)."""

import glob
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "colabs", "*.ipynb")))


def test_there_is_a_colab():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_colab_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with open(path) as f:
        notebook = json.load(f)
    namespace = {"__name__": "__colab__"}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(line for line in cell["source"] if not line.lstrip().startswith("!"))
            exec(compile(source, f"{os.path.basename(path)}:{cell.get('id')}", "exec"), namespace)
    if os.path.basename(path) == "quickstart.ipynb":  # the reloaded SavedModel's samples equal the model's
        assert capsys.readouterr().out.strip().splitlines()[-1] == "True"
