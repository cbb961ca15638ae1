"""evaluate_run / compare_runs / aggregate_runs on small fake run directories.

The run directories are made here by hand (a tiny Keras model saved as best.keras, generated
PNGs, split.csv, config.yaml, history.csv, timing.json), so these tests do not depend on the
training engine.
"""

from __future__ import annotations

import json

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from breastcam import models
from breastcam.cli import main
from breastcam.evaluate import aggregate_runs, classification_metrics, compare_runs, evaluate_run
from breastcam.evaluate.metrics import HEADLINE_METRICS

CLASSES = ["benign", "malignant"]
SIZE = 16


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 generated 16x16 PNGs (brightness depends on the class) and their manifest."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        label = i % 2
        image = rng.integers(0, 120, (SIZE, SIZE, 3)) + 100 * label
        path = f"{CLASSES[label]}/img_{i:02d}.png"
        (root / CLASSES[label]).mkdir(exist_ok=True)
        cv2.imwrite(str(root / path), image.astype(np.uint8))
        split = "test" if i < 12 else ("val" if i < 16 else "train")
        rows.append({"path": path, "label": CLASSES[label], "label_index": label,
                     "patient_id": f"p{i // 2}", "magnification": 40 if i % 3 else 100,
                     "split": split})
    manifest = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return root, manifest


def _make_run(run_dir, root, manifest, *, seed, split_csv_has_test=True, epochs=5):
    run_dir.mkdir(parents=True)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    keras.Model(inputs, outputs, name="tiny").save(run_dir / "best.keras")
    df = pd.read_csv(manifest)
    if not split_csv_has_test:  # as the training engine writes it: only the rows it trained on
        df = df[df["split"] != "test"]
    df.to_csv(run_dir / "split.csv", index=False)
    config = {
        "name": run_dir.name, "seed": seed, "output_dir": str(run_dir),
        "data": {"manifest": str(manifest), "root": str(root), "fold": None,
                 "image_size": [SIZE, SIZE], "preprocessing": "zero_one", "class_names": CLASSES},
        "model": {"name": "tiny", "options": {}},
        "train": {"batch_size": 5},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    rng = np.random.default_rng(seed)
    e = np.arange(epochs)
    pd.DataFrame({"epoch": e, "accuracy": 0.6 + 0.05 * e, "loss": 0.7 - 0.05 * e + rng.normal(0, .01, epochs),
                  "val_accuracy": 0.55 + 0.04 * e, "val_loss": 0.75 - 0.04 * e}).to_csv(
        run_dir / "history.csv", index=False)
    (run_dir / "timing.json").write_text(json.dumps(
        {"epoch_seconds": [1.0] * epochs, "best_epoch": 3, "seconds_to_best": 4.0,
         "total_seconds": float(epochs)}))
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dataset):
    root, manifest = dataset
    base = tmp_path_factory.mktemp("runs")
    run_a = _make_run(base / "seed_0", root, manifest, seed=0)
    run_b = _make_run(base / "seed_1", root, manifest, seed=1, split_csv_has_test=False, epochs=4)
    return run_a, run_b


def test_evaluate_run_writes_predictions_metrics_and_figures(runs, dataset):
    root, _ = dataset
    run_a, _ = runs
    m = evaluate_run(run_a, n_bootstrap=200, seed=0)

    pred = pd.read_csv(run_a / "predictions.csv")
    assert list(pred.columns[:8]) == ["path", "truth", "truth_index", "prediction",
                                      "prediction_index", "correct", "prob_benign", "prob_malignant"]
    assert "patient_id" in pred.columns and len(pred) == 12
    # Row order and values: the model applied by hand to each file.
    model = models.load_model(run_a / "best.keras")
    images = np.stack([cv2.imread(str(root / p))[..., ::-1] for p in pred["path"]]) / 255.0
    np.testing.assert_allclose(pred[["prob_benign", "prob_malignant"]], model.predict(images, verbose=0),
                               atol=1e-5)

    saved = json.loads((run_a / "metrics.json").read_text())
    direct = classification_metrics(pred["truth_index"], pred[["prob_benign", "prob_malignant"]],
                                     class_names=CLASSES)
    for key in direct:
        assert saved[key] == (pytest.approx(direct[key]) if isinstance(direct[key], float) else direct[key])
    assert set(saved["ci"]) == set(HEADLINE_METRICS)
    for key, interval in saved["ci"].items():
        if interval is not None:
            assert interval[0] <= saved[key] + 1e-12 and saved[key] <= interval[1] + 1e-12
    assert saved["bootstrap"]["n_bootstrap"] == 200
    assert saved["n_params"] == model.count_params()
    assert saved["seconds_to_best"] == 4.0 and saved["best_epoch"] == 3
    assert saved["run"]["model"] == "tiny" and saved["run"]["split"] == "test"
    assert m["accuracy"] == saved["accuracy"]
    for name in ("confusion_matrix", "roc", "reliability", "curves"):
        assert (run_a / f"{name}.png").stat().st_size > 1000

    # Per-magnification metrics (one model trained on all magnifications, paper B).
    evaluate_run(run_a, n_bootstrap=100, figures=False, group_by=["magnification"])
    groups = json.loads((run_a / "metrics_by_magnification.json").read_text())
    assert sorted(groups) == ["100", "40"]
    for mag, g in groups.items():
        part = pred[pred["magnification"] == int(mag)]
        assert g["n"] == len(part) and g["accuracy"] == pytest.approx(part["correct"].mean())
    with pytest.raises(ValueError, match="cannot group by 'stain'"):
        evaluate_run(run_a, n_bootstrap=0, figures=False, group_by="stain")

    evaluate_run(run_a, split="val", n_bootstrap=0, figures=False)
    assert len(pd.read_csv(run_a / "predictions_val.csv")) == 4
    assert "ci" not in json.loads((run_a / "metrics_val.json").read_text())


def test_test_rows_come_from_the_manifest_when_split_csv_lacks_them(runs):
    _, run_b = runs
    evaluate_run(run_b, n_bootstrap=50, figures=False)
    assert len(pd.read_csv(run_b / "predictions.csv")) == 12


def test_compare_runs(runs, tmp_path):
    run_a, run_b = runs
    r = compare_runs(run_a, run_b, out=tmp_path / "cmp.json")
    assert r["n"] == 12 and r["mcnemar"]["method"] == "exact"
    assert r["delong"]["applicable"] and r["delong"]["positive_class"] == "malignant"
    assert 0.0 <= r["delong"]["p_value"] <= 1.0
    assert json.loads((tmp_path / "cmp.json").read_text())["n"] == 12
    same = compare_runs(run_a, run_a)
    assert same["mcnemar"]["p_value"] == 1.0 and same["delong"]["p_value"] == pytest.approx(1.0)

    pred = pd.read_csv(run_a / "predictions.csv")
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    pred.iloc[::-1].to_csv(shuffled / "predictions.csv", index=False)
    with pytest.raises(ValueError, match="different order: row 0 is benign/img_00.png"):
        compare_runs(run_a, shuffled)
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    pred.iloc[1:].to_csv(fewer / "predictions.csv", index=False)
    with pytest.raises(ValueError, match=r"1 only in .*seed_0 \(first: benign/img_00.png\)"):
        compare_runs(run_a, fewer)


def test_aggregate_runs(runs, tmp_path):
    run_a, run_b = runs
    table = aggregate_runs([run_a, run_b], tmp_path / "agg")
    ma = json.loads((run_a / "metrics.json").read_text())
    mb = json.loads((run_b / "metrics.json").read_text())
    acc = table.set_index("metric").loc["accuracy"]
    assert acc["mean"] == pytest.approx((ma["accuracy"] + mb["accuracy"]) / 2)
    assert acc["std"] == pytest.approx(np.std([ma["accuracy"], mb["accuracy"]], ddof=1))
    assert acc["n"] == 2 and acc["seed_0"] == ma["accuracy"]
    assert "f1_per_class.malignant" in table["metric"].tolist()
    summary = json.loads((tmp_path / "agg" / "aggregate.json").read_text())
    assert summary["confusion_matrix_sum"] == (np.array(ma["confusion_matrix"]) + mb["confusion_matrix"]).tolist()
    hist = pd.read_csv(tmp_path / "agg" / "history_aggregate.csv")
    assert hist["n_runs"].tolist() == [2, 2, 2, 2, 1]  # run B stopped after 4 epochs
    assert (tmp_path / "agg" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "agg" / "aggregate.csv").is_file()


def test_cli_evaluate_compare_aggregate(runs, tmp_path, capsys):
    run_a, run_b = runs
    assert main(["evaluate", str(run_a), "--n-bootstrap", "20", "--no-figures"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["compare", str(run_a), str(run_b), "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads(capsys.readouterr().out)["mcnemar"]["n_discordant"] >= 0
    assert main(["aggregate", str(run_a), str(run_b), "--out", str(tmp_path / "agg")]) == 0
    assert "+-" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "nope")]) == 1
    assert "not a run directory" in capsys.readouterr().err
