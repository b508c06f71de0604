"""zoo.files: staged writes replace only what the project wrote, never entries added to its directories later."""

import json
import os

import pytest

from zoo import files


def _write(target, kind, names, overwrite=False):
    with files.staged_directory(str(target), kind, overwrite=overwrite) as staging:
        for name in names:
            with open(os.path.join(staging, name), "w") as f:
                f.write(name)


def test_a_project_directory_with_a_users_entry_is_not_replaced(tmp_path):
    target = tmp_path / "p"
    _write(target, "preset", ["config.json", "metadata.json"])
    assert json.loads((target / files.MARKER).read_text())["entries"] == [files.MARKER, "config.json",
                                                                         "metadata.json"]
    _write(target, "preset", ["config.json", "metadata.json"], overwrite=True)  # exactly as written: replaced
    (target / "my_notes.txt").write_text("irreplaceable")
    with pytest.raises(FileExistsError, match=r"also holds my_notes.txt, which flow-zoo did not write there.*"
                                              r"Move those entries out"):
        _write(target, "preset", ["config.json"], overwrite=True)
    assert (target / "my_notes.txt").read_text() == "irreplaceable"
    assert (target / "metadata.json").exists()
    os.remove(target / "my_notes.txt")
    _write(target, "preset", ["config.json"], overwrite=True)
    assert sorted(os.listdir(target)) == [files.MARKER, "config.json"]


def test_markers_without_entries_fall_back_to_what_the_kind_writes(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    for name in ("records.json", "part-00000.tfrecord", "part-00001.tfrecord"):
        (records / name).write_text("x")
    (records / files.MARKER).write_text(json.dumps({"kind": "records", "written_by": "flow-zoo"}))  # an old marker
    assert files.foreign_entries(str(records)) == []
    _write(records, "records", ["records.json"], overwrite=True)
    (records / files.MARKER).write_text(json.dumps({"kind": "records", "written_by": "flow-zoo"}))
    (records / "labels.csv").write_text("mine")
    with pytest.raises(FileExistsError, match="also holds labels.csv"):
        _write(records, "records", ["records.json"], overwrite=True)
    assert (records / "labels.csv").read_text() == "mine"

    unknown = tmp_path / "unknown"  # a marker of no known kind, without a list: nothing can be told apart
    unknown.mkdir()
    (unknown / "a.txt").write_text("?")
    (unknown / files.MARKER).write_text(json.dumps({"written_by": "flow-zoo"}))
    with pytest.raises(FileExistsError, match="does not list the entries written there"):
        _write(unknown, "preset", ["config.json"], overwrite=True)
    assert (unknown / "a.txt").read_text() == "?"


def test_staged_file_refuses_a_file_it_does_not_recognise(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("mine")
    with pytest.raises(FileExistsError, match=r"is not a file this project wrote \(ours say so\).*Move it away"):
        files.refuse_unless_replaceable_file(str(target), True, lambda p: False, how="ours say so")
    with files.staged_file(str(target), overwrite=True, recognize=lambda p: True) as staged:
        with open(staged, "w") as f:
            f.write("ours")
    assert target.read_text() == "ours"


def test_directories_with_our_file_names_but_no_marker_are_not_replaced(tmp_path):
    hub_preset = tmp_path / "hub"  # a KerasHub-style preset: the same three file names, no marker
    hub_preset.mkdir()
    for name in ("config.json", "metadata.json", "model.weights.h5"):
        (hub_preset / name).write_text("theirs")
    their_export = tmp_path / "export"  # a user's own tf.saved_model.save of another model
    (their_export / "variables").mkdir(parents=True)
    (their_export / "saved_model.pb").write_text("theirs")
    for target, kind in ((hub_preset, "preset"), (their_export, "saved_model")):
        assert files.written_by_project(str(target)) is None
        with pytest.raises(FileExistsError, match=r"flow-zoo did not write .*those carry \.flow_zoo\.json"):
            _write(target, kind, ["config.json"], overwrite=True)
        with pytest.raises(FileExistsError, match="flow-zoo did not write"):
            files.refuse_unless_replaceable_directory(str(target), kind)
    assert (hub_preset / "model.weights.h5").read_text() == "theirs"
    assert (their_export / "saved_model.pb").read_text() == "theirs"


def test_an_entry_added_inside_a_folder_the_project_wrote_is_found(tmp_path):
    target = tmp_path / "export"
    with files.staged_directory(str(target), "saved_model") as staging:
        os.makedirs(os.path.join(staging, "variables"))
        for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
            with open(os.path.join(staging, name), "w") as f:
                f.write(name)
    assert json.loads((target / files.MARKER).read_text())["paths"] == ["saved_model.pb", "variables",
                                                                       "variables/variables.index"]
    assert files.foreign_entries(str(target)) == []
    (target / "variables" / "notes.txt").write_text("mine")
    (target / "variables" / "mine" / "deeper").mkdir(parents=True)
    assert files.foreign_entries(str(target)) == ["variables/mine", "variables/notes.txt"]  # a folder once
    with pytest.raises(FileExistsError, match=r"also holds variables/mine, variables/notes.txt"):
        with files.staged_directory(str(target), "saved_model", overwrite=True):
            pass
    assert (target / "variables" / "notes.txt").read_text() == "mine"
