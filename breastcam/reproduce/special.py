"""Experiments that are not "train each model, report its test metrics".

- ``dala-data``: image counts per class and subset, split sizes and ratios, the training
  configuration (paper 000 Tables 3-5, paper 001 Table VI) from the manifest and the splits.
- ``dala-params``: parameter counts from the registry (GFLOPs where
  ``breastcam.models.summary.size_table`` exists) and convergence time from the ``timing.json``
  of the runs of the experiments in ``evaluate.timing_from`` (found under the same ``out``).
- ``dala-cam``: Grad-CAM / Score-CAM / Eigen-CAM / DT Grad-CAM on a trained DALAResNet50 (the
  ``train.reuse`` experiment's checkpoints when they exist, else trained here) -> mask metrics
  where masks exist, deletion / insertion always, and the Fig. 7 grid.

Each handler has :func:`breastcam.reproduce.reproduce`'s signature after ``name``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from breastcam.data import make_split
from breastcam.data.manifest import write_manifest
from breastcam.reproduce import plan as planning, report, runner
from breastcam.runs import Run

PAPER_RATIOS = {"dala": (0.6, 0.1, 0.3)}


def _row(exp, subset, metric, value, model="", protocol="") -> dict:
    return {"dataset": exp["dataset"], "subset": str(subset), "protocol": protocol, "model": model,
            "metric": metric, "value": float(value)}


def _manifest(exp, data_dir: Path, out: Path, hashes: dict) -> pd.DataFrame:
    from breastcam.data import load_manifest

    df = load_manifest(exp["dataset"], data_dir, **dict(exp.get("filters") or {}))
    path = out / "manifest.csv"
    hashes[runner._relative(path)] = write_manifest(df, path)
    return df


# --- dala-data ---------------------------------------------------------------------------------


def data_tables(exp: dict, data_dir: Path, out: Path, *, quick: bool = False,
                seeds: Sequence[int] | None = None, force: bool = False, verbose: int = 0,
                log: Callable[[str], None] = print, **_: object) -> Path:
    """Counts (Table 3), split sizes and ratios (Tables 4, VI) and the config (Table 5)."""
    hashes: dict[str, str] = {}
    df = _manifest(exp, data_dir, out, hashes)
    plan = planning.make_plan(exp, data_dir, out_dir=out, quick=False, manifest=df)
    rows = []
    by = (exp.get("subsets") or {}).get("by")
    classes = df.drop_duplicates("label_index").sort_values("label_index")["label"].tolist()
    groups = [(planning.subset_text(v), part) for v, part in df.groupby(by)] if by else []
    for subset, part in groups + [("all", df)]:
        for label in classes:
            rows.append(_row(exp, subset, f"n_{label}", (part["label"] == label).sum()))
        rows.append(_row(exp, subset, "n_total", len(part)))
    totals: dict[str, pd.Series] = {}
    for job in plan.splits:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            split = make_split(job.rows, job.base, group=job.group, seed=0, stratify=job.stratify)
        plan.notes += [f"split {job.key}: {w.message}" for w in caught]
        sizes = split["split"].value_counts()
        totals[job.protocol] = totals.get(job.protocol, pd.Series(dtype=float)).add(sizes, fill_value=0)
        rows += _split_rows(exp, job.subset, job.protocol, sizes)
    if by:  # the ratios over all split subsets together (Table 4 prints one set)
        for protocol, sizes in totals.items():
            rows += _split_rows(exp, "all", protocol, sizes)
    train = exp["train"]
    dropout = (exp.get("model_options", {}).get("dalaresnet50") or {}).get("dropout")
    for metric, value in (("batch_size", train.get("batch_size")), ("epochs", train.get("epochs")),
                          ("learning_rate", (train.get("optimizer") or {}).get("learning_rate")),
                          ("dropout", dropout)):
        if value is not None:
            rows.append(_row(exp, "all", metric, value))
    reproduced = pd.DataFrame(rows)
    plan.notes.append("split sizes are computed with breastcam.data.make_split (seed 0), the "
                      "same call dala-breakhis makes; nothing is trained")
    if quick:
        plan.notes.append("quick mode has no effect here: counting needs no training")
    return report.assemble(out, experiment=exp, reproduced=reproduced, hashes=hashes,
                           config={"experiment": _plain_exp(exp), "data_dir": str(data_dir)},
                           deviations=plan.deviations, notes=plan.notes)


def _split_rows(exp: dict, subset: str, protocol: str, sizes: pd.Series) -> list[dict]:
    total = float(sizes.sum())
    out = []
    for name in ("train", "val", "test"):
        n = float(sizes.get(name, 0))
        out.append(_row(exp, subset, f"n_{name}", n, protocol=protocol))
        out.append(_row(exp, subset, f"fraction_{name}", n / total if total else np.nan,
                        protocol=protocol))
    return out


# --- dala-params -------------------------------------------------------------------------------


def _params(model_name: str, options: dict, num_classes: Sequence[int]) -> dict[int, int]:
    """Parameter count per class count: one build; the final Dense layer adds (in + 1) per class."""
    import keras

    from breastcam import models

    model = models.build(model_name, 2, weights=None, **options)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    fan_in = int(dense.kernel.shape[0])
    base = int(model.count_params())
    keras.backend.clear_session()
    return {c: base + (c - 2) * (fan_in + 1) for c in num_classes}


def _flops(model_name: str, options: dict) -> float | None:
    try:
        from breastcam.models.summary import size_table  # optional (models layer)
    except ImportError:
        return None
    table = size_table([model_name])
    if "flops" in table.columns:
        return float(table["flops"].iloc[0])
    if "gflops" in table.columns:
        return float(table["gflops"].iloc[0]) * 1e9
    return None


def params_table(exp: dict, data_dir: Path, out: Path, *, quick: bool = False,
                 seeds: Sequence[int] | None = None, force: bool = False, verbose: int = 0,
                 log: Callable[[str], None] = print, models: Sequence[str] | None = None,
                 **_: object) -> Path:
    """Parameters (and GFLOPs) per model and class count; convergence time from earlier runs."""
    classes = dict(exp["evaluate"].get("num_classes") or {exp["dataset"]: 2})
    models_ = list(exp["quick"].get("models") or exp["models"]) if quick else list(exp["models"])
    models_ = list(models) if models is not None else models_
    rows, notes = [], []
    for name in models_:
        spec = exp["model_specs"][name]
        log(f"counting parameters of {name}")
        by_dataset = exp["evaluate"].get("options_by_dataset") or {}  # e.g. DALA's r per dataset
        try:
            counts = {}
            for dataset, c in classes.items():
                extra = dict((by_dataset.get(dataset) or {}).get(spec["model"]) or {})
                options = {**dict(spec["options"]), **extra}
                counts[dataset] = _params(spec["model"], options, [c])[c]
        except Exception as err:  # an unregistered model must not hide the others' counts
            notes.append(f"{name}: not built ({type(err).__name__}: {err})")
            continue
        for dataset in classes:
            rows.append({**_row(exp, "all", "params", counts[dataset], model=name), "dataset": dataset})
        flops = _flops(spec["model"], dict(spec["options"]))
        if flops is not None:
            rows.append(_row(exp, "all", "flops", flops, model=name))
    rows += _timing_rows(exp, out.parent, models_, notes)
    notes.append("Keras' ResNet50 has convolution biases: its parameter counts run higher than "
                 "the paper's PyTorch counts (SPEC section 3); the difference is expected")
    return report.assemble(out, experiment=exp, reproduced=pd.DataFrame(rows),
                           config={"experiment": _plain_exp(exp), "num_classes": classes},
                           deviations=["quick mode: fewer models"] if quick else [], notes=notes)


def _timing_rows(exp: dict, reports: Path, models_: Sequence[str], notes: list[str]) -> list[dict]:
    rows = []
    for source in exp["evaluate"].get("timing_from") or []:
        base = reports / source / "runs"
        if not base.is_dir():
            notes.append(f"convergence time of {source}: no runs under {base} (run "
                         f"`breastcam reproduce {source}` first, with the same --out)")
            continue
        dataset = {"dala-bach": "bach", "dala-miniddsm": "miniddsm"}.get(source, "breakhis")
        for model in models_:
            times = {}
            for timing in sorted(base.glob(f"*-dala/{model}/*/timing.json")):
                subset = timing.parts[-4].split("-")[0]
                seconds = json.loads(timing.read_text()).get("seconds_to_best")
                if seconds is not None:
                    times.setdefault(subset, []).append(float(seconds))
            for subset, values in times.items():
                rows.append({**_row(exp, subset, "convergence_time", np.mean(values), model=model,
                                    protocol="dala"), "dataset": dataset})
            if times:
                rows.append({**_row(exp, "all", "convergence_time_mean",
                                    np.mean([np.mean(v) for v in times.values()]), model=model,
                                    protocol="dala"), "dataset": dataset})
    return rows


# --- dala-cam ----------------------------------------------------------------------------------


def _masks_for(exp: dict, rows: pd.DataFrame, data_dir: Path, shapes) -> list | None:
    """Ground-truth masks of ``rows`` (None: no masks): MIAS circles or a folder of masks."""
    source = (exp.get("explain") or {}).get("masks")
    if "lesions" in rows.columns:
        from breastcam.data import mias_lesion_mask

        return [mias_lesion_mask(r, s) for (_, r), s in zip(rows.iterrows(), shapes)]
    if source and source != "mias_lesions":
        from breastcam.explain.run import MaskSource

        masks = MaskSource(source)
        return [masks.get(Path(p), s) for p, s in zip(rows["path"], shapes)]
    return None


def cam_comparison(exp: dict, data_dir: Path, out: Path, *, quick: bool = False,
                   seeds: Sequence[int] | None = None, force: bool = False, verbose: int = 0,
                   log: Callable[[str], None] = print, models: Sequence[str] | None = None,
                   protocols: Sequence[str] | None = None) -> Path:
    """CAM methods on DALAResNet50: mask metrics (where masks exist), deletion / insertion,
    and the Fig. 7 grid (one row per subset value)."""
    from breastcam.data.decode import read_image
    from breastcam.data.pipeline import resize_image
    from breastcam.explain import deletion_insertion, get_cam, mask_metrics
    from breastcam.explain.registry import canonical_method
    from breastcam.explain.road import road
    from breastcam.explain.stability import oriented, rank_stability
    from breastcam.explain.viewer_data import ViewerItem, add_map, known_region
    from breastcam.report.cam_grid import cam_grid
    from breastcam.report.viewer import write_viewer

    cfg = dict(exp.get("explain") or {})
    plan = planning.make_plan(exp, data_dir, out_dir=out, quick=quick, seeds=seeds,
                              models=models, protocols=protocols)
    reuse = exp["train"].get("reuse")
    outcome = runner.Outcome()
    splits = runner.make_splits(plan, force=force)
    todo = []
    for run in plan.runs:
        rel = run.run_dir.relative_to(out)
        other = out.parent / str(reuse) / rel if reuse else None
        if other is not None and Run.is_run(other) and Run.open(other).has_model:
            plan.notes.append(f"explaining the {reuse} checkpoint {runner._relative(other)}")
            outcome.groups.setdefault(run.group, []).append(other)
        else:
            todo.append(run)
    plan.runs = todo
    if todo:
        trained = runner.execute(plan, force=force, verbose=verbose, log=log)
        outcome.groups.update(trained.groups)
        outcome.failures += trained.failures
        outcome.hashes.update(trained.hashes)
    for job in plan.splits:
        outcome.hashes[runner._relative(job.path)] = runner.file_sha256(job.path)

    methods = list(dict.fromkeys(canonical_method(m) for m in cfg.get("methods") or
                                 ["gradcam", "scorecam", "eigencam", "dtgradcam"]))
    params = dict(cfg.get("params") or {})
    max_images = int((exp["quick"].get("max_images") if quick else None) or cfg.get("max_images") or 64)
    by = plan.report_by or (exp.get("subsets") or {}).get("by")
    rows, grid_images, grid_maps, grid_labels = [], [], {m: [] for m in methods}, []
    viewer: dict[tuple[str, int], ViewerItem] = {}  # (subset, image) -> what the offline page shows
    # faithfulness settings whose ranking of the methods is compared (Kendall's tau)
    settings = {"deletion (10 steps, zero)": "deletion_auc", "deletion (20 steps, zero)": "deletion_auc",
                "deletion (10 steps, blur)": "deletion_auc", "insertion (10 steps, zero)": "insertion_auc",
                "ROAD MoRF": "road_morf", "ROAD LeRF": "road_lerf"}
    setting_scores: dict[str, dict[str, list[float]]] = {m: {k: [] for k in settings} for m in methods}
    for (subset, protocol, model), dirs in outcome.groups.items():
        run_dir = dirs[0]
        trained = Run.open(run_dir).trained_model()  # the evaluated model, its pipeline included
        net = trained.network
        test = splits[f"{subset}-{protocol}"]
        test = test[test["split"] == cfg.get("split", "test")].head(max_images).reset_index(drop=True)
        originals = [read_image(Path(data_dir) / p) for p in test["path"]]
        x = trained.prepare(np.stack([resize_image(o, trained.image_size).numpy() for o in originals])).numpy()
        masks = _masks_for(exp, test, data_dir, [o.shape[:2] for o in originals])
        for method in methods:
            cam = get_cam(method, net, cfg.get("layer"), **dict(params.get(method) or {}))
            maps = cam(x)
            faith = deletion_insertion(net, x, maps, targets=cam.last_targets_, steps=10)
            roads = road(net, x, maps, targets=cam.last_targets_)
            frame = pd.DataFrame({"deletion_auc": faith["deletion_auc"],
                                  "insertion_auc": faith["insertion_auc"],
                                  "road_morf": roads["road_morf"], "road_lerf": roads["road_lerf"]})
            other = {
                "deletion (20 steps, zero)": deletion_insertion(net, x, maps, targets=cam.last_targets_,
                                                                steps=20)["deletion_auc"],
                "deletion (10 steps, blur)": deletion_insertion(net, x, maps, targets=cam.last_targets_,
                                                                steps=10, baseline="blur")["deletion_auc"],
            }
            kept = setting_scores[method]
            kept["deletion (10 steps, zero)"] += list(faith["deletion_auc"])
            kept["insertion (10 steps, zero)"] += list(faith["insertion_auc"])
            kept["ROAD MoRF"] += list(roads["road_morf"])
            kept["ROAD LeRF"] += list(roads["road_lerf"])
            for name, values in other.items():
                kept[name] += list(values)
            if masks is not None:
                thr = 0.0 if method == "dtgradcam" else cfg.get("threshold", "otsu")
                scores = [mask_metrics(m, k, thr) if k is not None and np.any(k) else {}
                          for m, k in zip(maps, masks)]
                frame = pd.concat([frame, pd.DataFrame(scores)], axis=1)
            frame[by or "subset"] = test[by].map(planning.subset_text) if by else subset
            for i in range(len(test)):  # the offline viewer: every explained image, every method
                add_map(viewer, (subset, i), cam, i, maps[i], name=f"{subset} / {Path(test.loc[i, 'path']).name}",
                        image=np.asarray(resize_image(originals[i], trained.image_size).numpy(), np.uint8),
                        mask=known_region(None if masks is None else masks[i], trained.image_size),
                        truth=str(test.loc[i, "label"]) if "label" in test else None)
            for value, part in frame.groupby(by or "subset"):
                for metric in ("iou", "dice", "recall", "f1", "deletion_auc", "insertion_auc", "road_morf",
                               "road_lerf"):
                    if metric in part and part[metric].notna().any():
                        rows.append(_row(exp, value, metric, part[metric].mean(), model=method,
                                         protocol=protocol))
            if by:  # Fig. 7: the first test image of every subset value
                first = test.groupby(test[by].map(planning.subset_text), sort=True).head(1).index
            else:
                first = test.index[:1]
            for i in first:
                grid_maps[method].append(maps[i])
                if method == methods[0]:
                    grid_images.append(originals[i])
                    grid_labels.append(f"{test.loc[i, by]}X" if by == "magnification" else str(subset))
    figures = []
    if grid_images:
        path = out / "cam_grid.png"
        cam_grid(grid_images, grid_maps, grid_labels, path)
        figures.append(("Fig. 7: Original | " + " | ".join(methods) + " (first test image per row)",
                        path))
    if all(r["metric"] not in ("iou", "dice") for r in rows):
        plan.notes.append("no ground-truth region masks for these images (BreakHis has none; the "
                          "paper does not say where its masks came from): mask metrics are "
                          "empty; deletion / insertion areas are reported instead. Give "
                          "explain.masks (a mask folder) or run on mini-MIAS (lesion circles)")
    means = pd.DataFrame({m: {k: float(np.mean(v)) if v else np.nan for k, v in per.items()}
                          for m, per in setting_scores.items()}).T
    if len(means):
        out.mkdir(parents=True, exist_ok=True)
        means.rename_axis("method").to_csv(out / "faithfulness_settings.csv", lineterminator="\n")
        taus = rank_stability(oriented(means, settings))
        taus.to_csv(out / "rank_stability.csv", index=False, lineterminator="\n")
        if len(methods) > 1:
            plan.notes.append(
                "rank stability of the CAM methods across faithfulness settings (Kendall's tau of their "
                "rankings, higher score = better; rank_stability.csv): " + "; ".join(
                    f"{r.setting_a} vs {r.setting_b}: {r.tau:.2f}" for r in taus.itertuples()))
    if viewer:
        page = write_viewer(out / "viewer.html", list(viewer.values()), methods, trained.class_names,
                            title=f"{exp['name']}: {', '.join(methods)}",
                            note="the class each image was explained for (its prediction); test images")
        plan.notes.append(f"every explained image with every method in one offline page: {page.name} "
                          "(method switch, opacity, DT Grad-CAM boxes, known regions)")
    figures += report.run_figures(outcome.groups, {})
    return report.assemble(out, experiment=exp, reproduced=pd.DataFrame(rows), figures=figures,
                           config={"experiment": _plain_exp(exp), "quick": quick},
                           hashes=outcome.hashes, deviations=plan.deviations, notes=plan.notes,
                           failures=outcome.failures)


def _plain_exp(exp: dict) -> dict:
    return {k: v for k, v in exp.items() if k != "model_specs"}


HANDLERS: dict[str, Callable[..., Path]] = {
    "dala-data": data_tables,
    "dala-params": params_table,
    "dala-cam": cam_comparison,
    "dala-cam-mias": cam_comparison,
}

__all__ = ["HANDLERS", "cam_comparison", "data_tables", "params_table"]
