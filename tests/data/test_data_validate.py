"""``validate_manifest`` / ``breastcam validate``: every bad file and label reported at once."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from fixtures_layouts import write_image

from breastcam.cli import main
from breastcam.data import load_manifest, validate_manifest, write_manifest
from breastcam.data.validate import format_problems


@pytest.fixture()
def breakhis_copy(tmp_path, breakhis_root):
    """A writable copy of the real BreakHis sample tree."""
    root = tmp_path / "breakhis"
    shutil.copytree(breakhis_root / "BreaKHis_v1", root / "BreaKHis_v1")
    return root


def _kinds(problems) -> dict[str, str]:
    return {p.path: p.kind for p in problems if p.path}


def test_clean_sample_has_no_problem(breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    assert validate_manifest(df, breakhis_root) == []
    assert format_problems([], len(df), 2).startswith("OK: 20 image(s), 2 classes")


def test_every_bad_file_is_reported(breakhis_copy):
    df = load_manifest("breakhis", breakhis_copy)
    files = [breakhis_copy / p for p in df["path"]]
    files[0].write_bytes(b"")  # zero-byte
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 2])  # truncated PNG
    files[2].write_bytes(data[:64] + b"\0" * 2000 + b"IEND\xaeB`\x82")  # PNG header, garbage body
    files[3].write_text("this is a text file named .png\n")  # not an image
    files[4].unlink()  # missing
    shutil.copy(files[5], files[6])  # duplicate content under another name
    problems = validate_manifest(df, breakhis_copy)
    kinds = _kinds(problems)
    paths = df["path"].tolist()
    assert kinds[paths[0]] == "zero-byte"
    assert kinds[paths[1]] == "truncated"
    assert kinds[paths[2]] == "corrupt"
    assert kinds[paths[3]] == "not-an-image"
    assert kinds[paths[4]] == "missing"
    assert kinds[paths[6]] == "duplicate-content" and paths[5] in next(
        p.detail for p in problems if p.path == paths[6])
    assert len(problems) == 6
    report = format_problems(problems, len(df))
    assert report.splitlines()[-1].startswith("6 problem(s) in 6 file(s) of 20 row(s)")
    assert all(p in report for p in paths[:5])


def test_label_and_manifest_problems(tmp_path):
    for i, name in enumerate(["a.png", "b.png", "c.png", "d.tif"]):
        write_image(tmp_path / name, value=i)
    (tmp_path / "e.xyz").write_bytes(b"data")
    df = pd.DataFrame({
        "path": ["a.png", "b.png", "c.png", "d.tif", "a.png", "e.xyz"],
        "label": ["benign", "malignant", "other", "benign", "benign", "benign"],
        "label_index": [0, 0, 1, 0, 0, 0],
        "patient_id": "",
        "split": ["train", "val", "test", "train", "holdout", "train"],
    })
    problems = validate_manifest(df, tmp_path, classes=["benign", "malignant", "normal"])
    found = {(p.path, p.kind) for p in problems}
    assert ("b.png", "label-index-mismatch") in found
    assert ("c.png", "unknown-label") in found
    assert ("a.png", "duplicate-path") in found
    assert ("a.png", "bad-split") in found
    assert ("e.xyz", "unsupported-extension") in found
    assert any(p.kind == "empty-class" and "'normal'" in p.detail for p in problems)
    assert not any(p.path == "d.tif" for p in problems)  # TIFF decodes (OpenCV)


def test_classes_inferred_when_not_given(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"{i}.png", value=i)
    df = pd.DataFrame({"path": ["0.png", "1.png", "2.png"], "label": ["x", "x", "z"],
                       "label_index": [0, 0, 2], "patient_id": ""})
    problems = validate_manifest(df, tmp_path)
    assert [(p.kind, p.detail) for p in problems] == [("empty-class", "no image has label_index 1")]


def test_cli_validate_exit_codes(tmp_path, breakhis_copy, capsys):
    manifest = tmp_path / "m.csv"
    write_manifest(load_manifest("breakhis", breakhis_copy), manifest)
    assert main(["validate", str(manifest), "--root", str(breakhis_copy)]) == 0
    assert "OK: 20 image(s)" in capsys.readouterr().out
    bad = next(breakhis_copy.rglob("SOB_M_PC-14-9146-40-001.png"))
    bad.write_bytes(bad.read_bytes()[:100])
    empty = next(breakhis_copy.rglob("SOB_B_TA-14-3411F-40-001.png"))
    empty.write_bytes(b"")
    assert main(["validate", str(manifest), "--root", str(breakhis_copy)]) == 1
    out = capsys.readouterr().out
    assert "SOB_M_PC-14-9146-40-001.png\ttruncated" in out
    assert "SOB_B_TA-14-3411F-40-001.png\tzero-byte" in out
    assert main(["validate", str(manifest)]) == 1  # wrong root: every file missing, and a hint
    assert "--root" in capsys.readouterr().err
