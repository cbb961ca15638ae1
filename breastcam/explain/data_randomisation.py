"""Data randomisation (Adebayo et al. 2018, section 5): does a map show what the labels taught?

The run's own configuration (its seed, so the same initial weights) is trained again on the same
images with the labels permuted (seeded, within the train and within the validation rows, so each
keeps its class counts): only the labels differ, and the model can only memorise them. Its **last-epoch** weights (what it memorised; its best-validation
checkpoint may be an early, barely trained epoch) explain the same images, for the class the
trained model predicts, and each map is compared with the trained model's by the measures of
:mod:`breastcam.explain.sanity` (Spearman correlation of the absolute maps, SSIM, the part of
the trained map's Otsu region kept), with 95 % bootstrap intervals over the images. A method
*passes* when the upper bound of its mean Spearman correlation is below ``threshold``; the
edge-detector control, which ignores the model, must fail.

The permuted run is an ordinary run folder (resumable, reused when asked again with the same
settings). How well it fit its permuted labels is reported beside the verdicts: a model that fit
nothing is a weak comparison, and the result says so.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
import pandas as pd

from breastcam.errors import OutputExistsError, UsageError
from breastcam.explain.base import BaseCAM
from breastcam.explain.registry import canonical_method, get_cam
from breastcam.explain.sanity import CONTROL, EdgeMap, compare, map_rows_figure, mean_ci
from breastcam.runs import Run, files

PERMUTED = "permuted_labels"  # folder (inside the sanity output) of the permuted manifest and run
WEAK_FIT = 0.9  # training accuracy below which the permuted model has not memorised its labels


def permuted_labels(rows: pd.DataFrame, seed: int = 0, splits: Sequence[str] = ("train", "val")) -> pd.DataFrame:
    """``rows`` with ``label`` (and ``label_index``) permuted within each of ``splits`` (seeded);
    every other column, and the rows of other splits, unchanged."""
    out = rows.copy()
    rng = np.random.default_rng(seed)
    for split in splits:
        where = np.flatnonzero(out["split"].astype(str).to_numpy() == split)
        order = rng.permutation(where)
        for column in ("label", "label_index"):
            if column in out:
                values = out[column].to_numpy()
                out.iloc[where, out.columns.get_loc(column)] = values[order]
    return out


def permuted_label_run(run_dir: str | Path, out_dir: str | Path, *, seed: int = 0, epochs: int | None = None,
                       verbose: int = 0) -> Path:
    """Train ``run_dir``'s configuration again on its train / val rows with the labels permuted;
    the manifest and the run go to ``out_dir``. Returns the permuted run's folder.

    ``epochs`` overrides the run's (memorising noise may need more); early stopping is dropped,
    since the point is to fit the noise. A permuted manifest already in ``out_dir`` must equal the
    one this seed makes: it is never silently replaced.
    """
    from breastcam.data.manifest import read_manifest
    from breastcam.train import run as train

    run = Run.open(run_dir)
    run.require_finished()
    own = run.dir / files.SPLIT
    rows = (read_manifest(own) if own.is_file()
            else pd.concat([run.rows("train"), run.rows("val")], ignore_index=True))
    permuted = permuted_labels(rows, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.csv"
    fresh = out / ".manifest.new.csv"
    permuted.to_csv(fresh, index=False, lineterminator="\n")
    if manifest.is_file() and not read_manifest(manifest).equals(read_manifest(fresh)):
        fresh.unlink()
        raise OutputExistsError(f"{manifest} holds other permuted labels (another run or seed): choose "
                                "another --out, or delete that folder to start over")
    fresh.replace(manifest)
    config = copy.deepcopy(run.config)
    config["name"] = f"{config.get('name') or run.name}-permuted-labels"
    config["output_dir"] = str(out / "run")
    config["data"] = {**config["data"], "manifest": str(manifest), "fold": None}
    config["train"] = {k: v for k, v in config["train"].items() if k != "early_stopping"}
    if epochs is not None:
        if int(epochs) < 1:
            raise UsageError(f"--epochs must be at least 1, got {epochs}")
        config["train"]["epochs"] = int(epochs)
    return train(config, verbose=verbose)


def memorised_network(run_dir: str | Path) -> keras.Model:
    """The permuted run's network with its last epoch's weights."""
    run = Run.open(run_dir)
    network = run.trained_model(calibrated=False).network
    network.load_weights(run.dir / files.LAST_WEIGHTS)
    return network


def training_fit(run_dir: str | Path) -> dict:
    """``{"epochs", "accuracy", "chance"}``: the last epoch's training accuracy of a run and
    the accuracy of always answering its largest training class."""
    from breastcam.data.manifest import read_manifest

    run = Run.open(run_dir)
    history = pd.read_csv(run.dir / files.HISTORY)
    rows = read_manifest(run.dir / files.SPLIT)
    train = rows[rows["split"].astype(str) == "train"]
    return {"epochs": int(len(history)), "accuracy": float(history["accuracy"].iloc[-1]),
            "chance": float(train["label"].value_counts(normalize=True).max())}


@dataclasses.dataclass
class DataRandomisationResult:
    table: pd.DataFrame  # method, measure, mean, ci_low, ci_high, images
    verdicts: dict  # method -> {"passes", "spearman", "spearman_ci_high", "why"}
    pairs: dict  # method -> (trained map, permuted-label map) of the first image
    threshold: float
    fit: dict | None = None  # the permuted run's training_fit


def data_randomisation_check(trained: keras.Model, permuted: keras.Model, images: np.ndarray,
                             methods: Sequence[str] | Mapping[str, BaseCAM], *, layer: str | None = "auto",
                             threshold: float = 0.5, n_bootstrap: int = 1000, seed: int = 0, control: bool = True,
                             fit: dict | None = None) -> DataRandomisationResult:
    """Compare each method's maps of ``images`` (the models' preprocessed input) between the
    ``trained`` model and the one trained on ``permuted`` labels (same architecture), both for
    the class the trained model predicts. ``methods``: names (CAMs of ``trained`` made at
    ``layer``), or ready CAM objects of ``trained`` by name (their layer is used for both)."""
    if isinstance(methods, Mapping):
        cams = {canonical_method(m): cam for m, cam in methods.items()}
    else:
        cams = {m: get_cam(m, trained, layer) for m in (canonical_method(m) for m in dict.fromkeys(methods))}
    rows, pairs, verdict = [], {}, {}
    for name in [*cams, *([CONTROL] if control else [])]:
        if name == CONTROL:
            ours = theirs = EdgeMap()(images)
        else:
            cam = cams[name]
            ours = cam(images)
            theirs = get_cam(name, permuted, cam.layer)(images, cam.last_targets_)
        pairs[name] = (ours[0], theirs[0])
        for measure, values in compare(ours, theirs).items():
            mean, lo, hi = mean_ci(values, n_bootstrap, seed)
            rows.append({"method": name, "measure": measure, "mean": mean, "ci_low": lo, "ci_high": hi,
                         "images": int(np.isfinite(values).sum())})
            if measure == "spearman":
                passes = bool(hi < threshold)
                verdict[name] = {
                    "passes": passes, "spearman": mean, "spearman_ci_high": hi,
                    "why": (f"its maps from the model trained on permuted labels keep a rank correlation of "
                            f"{mean:.2f} (95 % CI up to {hi:.2f}) with the trained model's"
                            + (f": below {threshold}, the maps depend on what the labels taught" if passes else
                               f": not below {threshold}, the maps do not show what the labels taught")),
                }
    return DataRandomisationResult(pd.DataFrame(rows), verdict, pairs, float(threshold), fit)


def markdown(result: DataRandomisationResult) -> str:
    lines = ["# Sanity checks: data randomisation", "",
             "The run retrained on permuted labels (its last epoch) against the trained model, for the class "
             f"the trained model predicts. Pass: the upper 95 % bound of the mean Spearman correlation is below "
             f"{result.threshold}. The control ignores the model and must fail.", ""]
    if result.fit:
        fit = result.fit
        lines += [f"The permuted-label run reached a training accuracy of {fit['accuracy']:.3f} after "
                  f"{fit['epochs']} epoch(s) (largest class: {fit['chance']:.3f})"
                  + ("." if fit["accuracy"] >= WEAK_FIT else
                     f": below {WEAK_FIT}, it has not memorised its labels, so the comparison is weak (both "
                     "models may still be close to their shared initial weights, or one may differ only for "
                     "having learnt little); train it longer (--epochs)."), ""]
    lines += ["| method | verdict | Spearman | why |", "|---|---|---:|---|"]
    for method, v in result.verdicts.items():
        lines.append(f"| {method} | {'passes' if v['passes'] else 'FAILS'} | {v['spearman']:.3f} | {v['why']} |")
    lines += ["", "| method | measure | mean | 95 % CI | images |", "|---|---|---:|---|---:|"]
    for r in result.table.itertuples():
        lines.append(f"| {r.method} | {r.measure} | {r.mean:.3f} | [{r.ci_low:.3f}, {r.ci_high:.3f}] | {r.images} |")
    return "\n".join(lines) + "\n"


def pair_figure(result: DataRandomisationResult, image: np.ndarray, path) -> None:
    """One row per method: the image, the trained model's map, the permuted-label model's map."""
    map_rows_figure(result.pairs, image, ["image", "trained", "permuted labels"], path)
