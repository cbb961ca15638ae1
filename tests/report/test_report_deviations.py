"""Issue 11: one list of deviations per paper, as data, shown in every report of its experiments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from breastcam.report import list_experiments, load_experiment, write_report
from breastcam.report.deviations import FIELDS, PAPER_FOLDERS, deviations_for, load_deviations
from breastcam.report.published import experiments_dir

REPO = Path(__file__).resolve().parents[2]
NAMES = [name for name, _, _ in list_experiments()]


@pytest.mark.parametrize("folder", sorted(PAPER_FOLDERS.values()))
def test_every_deviation_names_real_experiments_and_a_real_source(folder):
    entries = load_deviations(folder)
    assert entries, folder
    for d in entries:
        assert set(d) == set(FIELDS)
        unknown = set(d["experiments"]) - set(NAMES) - {"all"}
        assert not unknown, (d["what"], unknown)
        path, _, name = d["source"].partition("#")
        file = REPO / path
        assert file.is_file(), d["source"]
        assert name and name in file.read_text(encoding="utf-8"), d["source"]


def test_deviations_files_are_not_experiments():
    assert "deviations" not in " ".join(NAMES)
    assert (experiments_dir() / "dala" / "deviations.yaml").is_file()


def test_bad_deviation_file_is_refused_with_its_path(tmp_path):
    (tmp_path / "dala").mkdir()
    (tmp_path / "dala" / "deviations.yaml").write_text("- what: x\n  reason: y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="deviations.yaml: entry 0 must have exactly the keys"):
        load_deviations("dala", tmp_path)


@pytest.mark.parametrize("name, expected", [
    ("dala-breakhis", "reduction ratio of the attention module"),
    ("dala-cam", "DT Grad-CAM parameters"),
    ("modres-mias", "split before augmenting"),
    ("ernet-breakhis", "ER connection"),
])
def test_report_lists_the_papers_deviations_from_the_data_file(tmp_path, name, expected):
    exp = load_experiment(name)
    assert expected in [d["what"] for d in deviations_for(exp)]
    html_path = write_report(tmp_path, title=name, experiment=exp, comparison=pd.DataFrame(),
                             deviations=["quick mode: 1 epoch"])
    html = html_path.read_text(encoding="utf-8")
    section = html.split("<h2>Deviations from the paper</h2>")[1].split("<h2>")[0]
    assert expected in section and "quick mode: 1 epoch" in section and "the paper says" in section
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert expected in md.split("## Deviations from the paper")[1].split("## Published")[0]


def test_an_entry_for_other_experiments_is_left_out():
    exp = load_experiment("dala-bach")
    whats = [d["what"] for d in deviations_for(exp)]
    assert "DT Grad-CAM parameters" not in whats and "optimizer" in whats
