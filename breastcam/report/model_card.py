"""The model card shipped with every export: ``model_card.md`` + ``model_card.json``.

Fields after Mitchell et al. 2019 ("Model Cards for Model Reporting": model details, intended
use, factors, metrics, evaluation and training data, ethical considerations, caveats) in the
section layout of Hugging Face model cards. Every value is read from the run (config, split
files, ``metrics.json``, the fitted stain reference) or the registry; nothing is typed by hand
except the intended-use text, which is the same for every breastcam model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from breastcam.errors import DataError
from breastcam.report.deviations import PAPER_FOLDERS, load_deviations

PAPERS = {
    "A": "Liu et al., DALAResNet50 with DT Grad-CAM (papers 000 / 001)",
    "B": "Chandana Mani & Kamalakannan, ERNet with Macenko stain normalisation (paper 003)",
    "C": "Gharaibeh et al., ResNet50 frozen but its last 10 layers, Grad-CAM overlay (paper 004)",
}
INTENDED_USE = (
    "Research on breast-cancer image classification and its explanations: reproducing the "
    "published studies, comparing models, studying CAM methods. Not a medical device: not for "
    "diagnosis, screening, triage or any decision about a patient."
)
OUT_OF_SCOPE = [
    "clinical diagnosis or screening, alone or as a second reader",
    "images of another modality, stain, scanner, magnification or resolution than the training data "
    "without re-validation (the model has not seen them)",
    "populations or institutions other than the training dataset's without re-validation",
    "reading the CAM overlays as lesion segmentations (they are coarse class-evidence maps)",
]
LIMITATIONS = [
    "public benchmark data from few patients (BreakHis: 82; mini-MIAS: 161 films): intervals are wide and "
    "image-level splits leak patients (the paper protocols' own choice; patient-level splits are available)",
    "probabilities are not calibrated unless the metrics say so: read the ECE / Brier values",
]
_METRICS = ("accuracy", "f1_macro", "sensitivity", "specificity", "roc_auc", "g_mean", "iba")


def model_card(run, trained) -> dict[str, Any]:
    """The card of ``trained`` (a :class:`~breastcam.runs.TrainedModel`) of ``run``, as a dict."""
    from breastcam import models

    spec = models.spec(trained.model_name) if trained.model_name in models.names() else None
    paper = spec.paper if spec is not None else ""
    metrics = run.read_json("metrics.json")
    cfg = run.config
    card = {
        "model": {
            "name": trained.model_name,
            "paper": PAPERS.get(paper, "none (a breastcam baseline)" if spec else "not a registered model"),
            "parameters": int(trained.network.count_params()),
            "input_size": list(trained.image_size),
            "classes": list(trained.class_names),
            "options": (cfg.get("model") or {}).get("options") or {},
            "initial_weights": (cfg.get("model") or {}).get("weights"),
        },
        "training_data": _training_data(run, trained),
        "preprocessing": {
            "resize": f"antialiased bilinear to {trained.image_size[0]}x{trained.image_size[1]}, rounded to uint8",
            "stain": trained.stain_summary() and {
                "method": "macenko", "reference": (run.stain_config or {}).get("reference"),
                **{k: v for k, v in trained.stain.get_config().items() if k not in ("format", "version")}},
            "preprocessing": trained.preprocessing,
        },
        "training": {k: (cfg.get("train") or {}).get(k) for k in
                     ("epochs", "batch_size", "optimizer", "loss", "monitor", "class_weight")}
        | {"seed": cfg.get("seed"), "augmentation": run.data.get("augmentation")},
        "metrics": _metrics(metrics),
        "calibration": ({k: metrics.get(k) for k in ("ece", "brier") if k in metrics}
                        | {k: v for k, v in (metrics.get("trust") or {}).items()
                           if k in ("nll", "ece_before", "nll_before", "brier_before", "coverage",
                                    "mean_set_size", "aurc", "e_aurc")}
                        | ({"method": trained.calibration.get("method", "temperature"),
                            "temperature": trained.calibration.get("temperature"),
                            "vector": trained.calibration.get("vector"),
                            "conformal": trained.calibration.get("conformal")} if trained.calibration else {})
                        ) or None,
        "intended_use": INTENDED_USE,
        "out_of_scope": OUT_OF_SCOPE,
        "limitations": LIMITATIONS + _deviations(paper, run.name),
        "provenance": trained.provenance,
    }
    return card


def _training_data(run, trained) -> dict:
    out: dict[str, Any] = {"manifest": run.data.get("manifest"), "manifest_sha256": run.split_sha256,
                           "rows_sha256": run.rows_sha256, "data_root": run.data.get("root"),
                           "fold": run.data.get("fold")}
    counts: dict[str, dict[str, int]] = {}
    frames = []
    for split in ("train", "val", "test"):
        try:
            frames.append(run.rows(split))
        except DataError:  # a split the run does not have
            continue
    if frames:
        rows = pd.concat(frames, ignore_index=True)
        for split, part in rows.groupby("split", sort=False):
            counts[str(split)] = {str(k): int(v) for k, v in part["label"].value_counts().sort_index().items()}
        for col in ("split_protocol", "split_group", "split_seed"):
            if col in rows and rows[col].notna().any():
                out[col.removeprefix("split_")] = str(rows[col].dropna().iloc[0])
    out["class_counts"] = counts
    return out


def _metrics(metrics: dict) -> dict | None:
    if not metrics:
        return None
    ci = metrics.get("ci") or {}
    table = {k: {"value": metrics.get(k), "ci95": ci.get(k)} for k in _METRICS if metrics.get(k) is not None}
    return {"split": (metrics.get("run") or {}).get("split", "test"), "n": metrics.get("n"),
            "breastcam": table, "paper_definitions": metrics.get("paper")}


def _deviations(paper: str, name: str) -> list[str]:
    folder = PAPER_FOLDERS.get(paper)
    if folder is None:
        return []
    return [f"deviation from the paper ({d['what']}): {d['breastcam']}" for d in load_deviations(folder)
            if "all" in d["experiments"] or name in d["experiments"]]


def write_model_card(card: dict, folder: str | Path) -> tuple[Path, Path]:
    """Write ``model_card.json`` and ``model_card.md`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    js, md = folder / "model_card.json", folder / "model_card.md"
    js.write_text(json.dumps(card, indent=2, default=str))
    md.write_text(card_markdown(card))
    return md, js


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "—" if v is None else str(v)


def card_markdown(card: dict) -> str:
    m, data, pre, export = card["model"], card["training_data"], card["preprocessing"], card.get("export", {})
    lines = [f"# Model card: {m['name']}", "",
             "## Model details", "",
             f"- **Model:** `{m['name']}` ({m['parameters']:,} parameters), input {m['input_size'][0]}x{m['input_size'][1]} RGB",
             f"- **Paper:** {m['paper']}",
             f"- **Classes (output order):** {', '.join(m['classes'])}",
             f"- **Initial weights:** {_value(m['initial_weights'])}; options {_value(m['options'])}",
             f"- **Exported as:** {export.get('format', '—')}; input: {export.get('input', '—')}", ""]
    stain = pre.get("stain")
    lines += ["## Preprocessing", "", f"- resize: {pre['resize']}",
              f"- stain normalisation: {'Macenko, reference ' + _value(stain.get('reference')) + ', stain matrix ' + _value(stain.get('stain_matrix')) + ', max concentrations ' + _value(stain.get('max_concentrations')) if stain else 'none'}",
              f"- pixel preprocessing: `{pre['preprocessing']}`", ""]
    lines += ["## Training data", "",
              f"- manifest: {_value(data.get('manifest'))} (sha256 {_value(data.get('manifest_sha256'))})",
              f"- the run's rows (split.csv) sha256: {_value(data.get('rows_sha256'))}",
              f"- split protocol: {_value(data.get('protocol'))}, grouped by {_value(data.get('group'))}, seed {_value(data.get('seed'))}, fold {_value(data.get('fold'))}", ""]
    if data.get("class_counts"):
        classes = sorted({c for v in data["class_counts"].values() for c in v})
        lines += ["| split | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
        for split, c in data["class_counts"].items():
            lines.append(f"| {split} | " + " | ".join(str(c.get(k, 0)) for k in classes) + " |")
        lines.append("")
    lines += ["## Training", "", *(f"- {k}: {_value(v)}" for k, v in card["training"].items()), ""]
    lines += ["## Metrics", ""]
    metrics = card.get("metrics")
    if metrics:
        lines += [f"On the run's {metrics['split']} split (n = {metrics['n']}), 95 % percentile-bootstrap intervals "
                  "(breastcam's definitions; the papers' own definitions are in model_card.json).", "",
                  "| metric | value | 95 % CI |", "|---|---|---|"]
        for k, v in metrics["breastcam"].items():
            ci = v.get("ci95")
            lines.append(f"| {k} | {_value(v['value'])} | {'[' + ', '.join(f'{x:.4f}' for x in ci) + ']' if ci else '—'} |")
        lines.append("")
    else:
        lines += ["Not evaluated when exported: run `breastcam evaluate RUN` and export again.", ""]
    cal = card.get("calibration")
    lines += ["## Calibration", "", (", ".join(f"{k} {_value(v)}" for k, v in cal.items()) if cal else "not measured"), ""]
    if export.get("verified"):
        v = export["verified"]
        lines += ["## Verification", "", f"The written file was run at export time on {card.get('verification_images', v['images'])}: "
                  f"largest probability difference from the evaluated model {v['max_abs_difference']:.2e} "
                  f"(tolerance {v['tolerance']:.0e}).", ""]
        lines += [f"- {n}" for n in export.get("notes") or []] + ([""] if export.get("notes") else [])
    lines += ["## Intended use", "", card["intended_use"], "", "## Out-of-scope uses", "",
              *(f"- {x}" for x in card["out_of_scope"]), "", "## Limitations and deviations from the paper", "",
              *(f"- {x}" for x in card["limitations"]), ""]
    lines += ["## How to load it without breastcam", "", "```python", "import json, tensorflow as tf"]
    fmt = export.get("format")
    if fmt == "savedmodel":
        lines += ["model = tf.saved_model.load('savedmodel')", "meta = json.load(open('savedmodel/breastcam.json'))",
                  "probs = model.signatures['serving_default'](images=tf.cast(rgb_batch, tf.float32))['probabilities']",
                  "# rgb_batch: [B, H, W, 3] RGB in 0-255, any size; stain and preprocessing are inside"]
    elif fmt == "onnx":
        lines += ["import onnxruntime as ort", "s = ort.InferenceSession('model.onnx')",
                  "probs = s.run(None, {s.get_inputs()[0].name: pixels})[0]  # see 'input' above"]
    elif fmt == "litert":
        lines += ["from ai_edge_litert.interpreter import Interpreter", "runner = Interpreter(model_path='model.tflite').get_signature_runner('serve')",
                  "probs = runner(images=pixels)['probabilities']  # see 'input' above"]
    else:
        lines += ["import keras", "net = keras.saving.load_model('model.keras')  # custom layers: import breastcam.models first",
                  "meta = json.load(open('model.json'))  # preprocessing and stain reference to apply before net"]
    lines += ["```", ""]
    return "\n".join(lines)
