"""Label files of a synthetic tree (:mod:`breastcam.data.synth_like`), written from its rows.

Why: two loaders label images from a file beside them rather than from folder names - mini-MIAS
from ``Info.txt``, CDD-CESM from the ``Radiology manual annotations.xlsx`` sheet. A synthetic
tree without them cannot be loaded, so ``synth`` writes them from the reference manifest's rows
(the columns the loaders produced when the manifest was made), in the formats the loaders read.
Only the rows written are listed, so a ``fraction`` tree loads without warnings.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pandas as pd

from breastcam.errors import DataError

#: CDD-CESM sheet columns written, from the manifest column each comes from.
CDDCESM_SHEET = {
    "Image_name": "image_name", "Patient_ID": "patient_id", "Side": "laterality", "Type": "type",
    "Age": "age", "Breast density (ACR)": "density", "BIRADS": "birads", "View": "view",
    "Findings": "findings", "Pathology Classification/ Follow up": "pathology", "Tags": "tags",
}


def write_label_files(rows: pd.DataFrame, root: str | Path, dataset: str) -> list[Path]:
    """Write the label file(s) ``dataset``'s loader needs for ``rows`` under ``root``; the paths."""
    writer = {"mias": _mias_info, "cddcesm": _cddcesm_sheet}.get(dataset)
    return [] if writer is None else [writer(rows, Path(root))]


def _need(rows: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = sorted(set(columns) - set(rows.columns))
    if missing:
        raise DataError(f"synth: cannot write {what}: the reference manifest lacks column(s) {missing}")


def _mias_info(rows: pd.DataFrame, root: Path) -> Path:
    """``Info.txt`` rows ``REFNUM TISSUE CLASS [SEVERITY [X Y RADIUS]]``, one per lesion (one
    ``NORM`` row for a normal film), beside the PGMs."""
    _need(rows, ["path", "refnum", "tissue", "abnormality", "lesions"], "mini-MIAS Info.txt")
    folders = {str(PurePosixPath(str(p)).parent) for p in rows["path"]}
    if len(folders) != 1:
        raise DataError(f"synth: mini-MIAS images must share one folder for Info.txt, got {sorted(folders)}")
    lines = []
    for _, row in rows.sort_values("refnum").iterrows():
        lesions = json.loads(row["lesions"]) if isinstance(row["lesions"], str) and row["lesions"] else []
        if not lesions:
            lines.append(f"{row['refnum']} {row['tissue']} {str(row['abnormality']) or 'NORM'}")
        for lesion in lesions:
            coords = [lesion.get(k) for k in ("x", "y", "radius")]
            where = " " + " ".join(str(int(c)) for c in coords) if None not in coords else ""
            lines.append(f"{row['refnum']} {row['tissue']} {lesion['abnormality']} "
                         f"{lesion['severity']}{where}")
    path = root / folders.pop() / "Info.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def _cddcesm_sheet(rows: pd.DataFrame, root: Path) -> Path:
    """``Radiology manual annotations.xlsx``, sheet ``all``: one row per image, pathology
    capitalised as in the published sheet."""
    _need(rows, list(CDDCESM_SHEET.values()), "the CDD-CESM annotation sheet")
    sheet = pd.DataFrame({name: rows[column].astype(str).values for name, column in CDDCESM_SHEET.items()})
    sheet["Pathology Classification/ Follow up"] = sheet["Pathology Classification/ Follow up"].str.capitalize()
    path = root / "Radiology manual annotations.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.to_excel(path, sheet_name="all", index=False, engine="openpyxl")
    return path
