"""The offline end-to-end demo: generated H&E-like data -> patient split -> train -> evaluate ->
DT Grad-CAM overlays -> one HTML page.

Everything runs on two CPU cores in a few minutes with ``weights=None``; nothing is downloaded.
It exercises the same code paths as a paper reproduction, at toy scale.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

DEMO_MODEL = "dalaresnet50"


def demo_config(out: Path, split_csv: Path, data_root: Path, *, epochs: int, image_size: int) -> dict:
    """The run config the demo trains: paper A's protocol, shrunk to toy size."""
    return {
        "name": "demo",
        "output_dir": str(out / "run"),
        "seed": 0,
        "data": {
            "manifest": str(split_csv),
            "root": str(data_root),
            "image_size": image_size,
            "preprocessing": "minus_one_one",
            "augmentation": "dala",
            "cache": "memory",
        },
        "model": {"name": DEMO_MODEL, "weights": None, "options": {"attention_stage": 4}},
        "train": {
            "batch_size": 16,
            "epochs": epochs,
            "optimizer": {"name": "adam", "learning_rate": 1.0e-3},  # paper A: 1e-4 over 50 epochs
            "loss": "categorical_crossentropy",
            "monitor": "val_accuracy",
            # A few dozen steps from scratch: let BatchNorm statistics follow the data.
            "bn_momentum": 0.8,
        },
    }


def run_demo(
    out_dir: str | Path = "demo_out",
    *,
    epochs: int = 8,
    image_size: int = 64,
    n_patients: int = 16,
    images_per_patient: int = 6,
    n_explain: int = 4,
    verbose: int = 2,
) -> dict:
    """Run the demo into ``out_dir``; return a summary dict (paths and headline metrics)."""
    from breastcam.data import make_split, make_synthetic, write_split
    from breastcam.evaluate import evaluate_run
    from breastcam.explain.run import explain_files
    from breastcam.train import run

    t0 = time.perf_counter()
    out = Path(out_dir)
    data_root = out / "data"
    df = make_synthetic(data_root, n_patients=n_patients, images_per_patient=images_per_patient,
                        image_size=(128, 128), seed=0)
    split = make_split(df, "dala", group="patient", seed=0)
    split_csv = out / "split.csv"
    sha = write_split(split, split_csv, force=True)

    run_dir = run(demo_config(out, split_csv, data_root, epochs=epochs, image_size=image_size), verbose=verbose)
    # Temperature and conformal sets from the validation split (the demo's is small: alpha 0.2)
    from breastcam.evaluate.calibrate_run import calibrate_run

    calibration = calibrate_run(run_dir, alpha=0.2)
    metrics = evaluate_run(run_dir)

    from breastcam.runs import Run

    trained = Run.open(run_dir).trained_model()  # the model evaluate just measured
    test = split[split["split"] == "test"].head(n_explain)
    explain_dir = run_dir / "explanations"
    explain_files(trained, [str(data_root / p) for p in test["path"]], "dtgradcam", out_dir=explain_dir)
    summary = {
        "out_dir": str(out),
        "run_dir": str(run_dir),
        "split_sha256": sha,
        "accuracy": metrics.get("accuracy"),
        "roc_auc": metrics.get("roc_auc"),
        "temperature": calibration["temperature"],
        "conformal_coverage": metrics["trust"].get("coverage"),
        "mean_set_size": metrics["trust"].get("mean_set_size"),
        "aurc": metrics["trust"]["aurc"],
        "figures": sorted(str(p) for p in Path(run_dir).glob("*.png")),
        "overlays": sorted(str(p) for p in explain_dir.glob("*_overlay.png")),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
