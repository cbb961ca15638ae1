"""The ``breastcam`` command line: parses arguments and calls the library, nothing more.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args)``; library imports
happen inside ``_run_*`` so ``breastcam --help`` stays fast (no TensorFlow import).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from breastcam.errors import OutputExistsError, UsageError


class _Registry:
    """``choices=`` read from registries (each ``"module:NAME"``: a dict, a tuple of names or one
    name), imported when argparse first checks a value or prints the help, not when the parser is
    built: the explain registry imports TensorFlow, which ``breastcam --help`` should not wait for."""

    def __init__(self, *sources: str, drop: Sequence[str] = (), tensorflow: bool = False):
        self.sources, self.drop, self.tensorflow = sources, tuple(drop), tensorflow

    def _names(self) -> list[str]:
        from importlib import import_module

        if self.tensorflow and "--verbose" not in sys.argv and "tensorflow" not in sys.modules:
            from breastcam import console

            console.quiet_tensorflow()  # a registry may import TensorFlow before main() silences it
        names: list[str] = []
        for source in self.sources:
            module, _, attr = source.partition(":")
            value = getattr(import_module(module), attr)
            names += [value] if isinstance(value, str) else list(value)
        return [n for n in names if n not in self.drop]

    def __contains__(self, value) -> bool:
        return value in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


DATASETS = _Registry("breastcam.data.loaders:DATASETS")
PROTOCOLS = _Registry("breastcam.data.splits:PROTOCOLS", "breastcam.data.official:PROTOCOL")
PATIENT_FROM = _Registry("breastcam.data.splits:PATIENT_FROM")
CAM_METHODS = _Registry("breastcam.explain.registry:METHODS", tensorflow=True)
EXPORT_FORMATS = _Registry("breastcam.runs.files:EXPORT_FORMATS")

# --- data ------------------------------------------------------------------------------------


def _add_manifest(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=DATASETS,
                   help="dataset layout (each loader's docstring documents the folders it expects)")
    p.add_argument("root", help="dataset root folder")
    p.add_argument("--out", required=True, help="manifest CSV to write")
    g = p.add_argument_group("options (each applies to the datasets named)")
    g.add_argument("--magnification", nargs="+", metavar="MAG",
                   help="breakhis: keep these magnifications, e.g. 40 or 40 400")
    g.add_argument("--label", choices=["binary", "subtype"], help="breakhis: 2 classes or 8 subtypes")
    g.add_argument("--patient-from", choices=PATIENT_FROM,
                   help="breakhis: patient = numeric part of the slide token (default) or the token")
    g.add_argument("--classes", help="mias: three|binary; cddcesm: binary|three|malignant (normal vs "
                   "malignant, benign left out: paper C's task); "
                   "folder: comma-separated class folders in label order")
    g.add_argument("--modality", choices=["low_energy", "subtracted", "both"], help="cddcesm")
    g.add_argument("--annotations", help="cddcesm: path of 'Radiology manual annotations.xlsx'")
    g.add_argument("--ground-truth", help="bach: a name,label CSV overriding the class folders")
    g.add_argument("--variant", choices=["JPEG-8", "PNG-16"], help="miniddsm")
    g.add_argument("--subset", choices=["full", "paper"],
                   help="miniddsm: every image (default) or paper 001's 2,000 (data_manifests/miniddsm_paper_subset.csv)")
    g.add_argument("--metadata", help="miniddsm: DataWMask.xlsx to check the images against "
                   "(default: the one in the variant folder, when present)")
    g.add_argument("--patient-regex", help="folder: regex giving the patient id from the path "
                   "below the class folder (group 'patient' or group 1)")
    g.add_argument("--ignore-other", action="store_true", default=None,
                   help="folder: leave out non-image files instead of failing")


def _run_manifest(args: argparse.Namespace) -> int:
    from breastcam.data import load_manifest, write_manifest

    classes = args.classes
    if args.dataset == "folder" and classes:
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    options = {
        "magnification": args.magnification, "label": args.label, "patient_from": args.patient_from,
        "classes": classes, "modality": args.modality, "annotations": args.annotations,
        "ground_truth": args.ground_truth, "variant": args.variant, "metadata": args.metadata,
        "subset": args.subset,
        "patient_regex": args.patient_regex, "ignore_other": args.ignore_other,
    }
    df = load_manifest(args.dataset, args.root, **options)
    digest = write_manifest(df, args.out)
    patients = df.loc[df["patient_id"] != "", "patient_id"].nunique()
    counts = df["label"].value_counts().reindex(df.attrs.get("classes"), fill_value=0)
    print(f"{args.out}: {len(df)} images, {patients} patients; "
          + ", ".join(f"{label} {n}" for label, n in counts.items()))
    print(f"sha256 {digest}")
    return 0


def _add_split(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="manifest CSV (from `breastcam manifest`)")
    p.add_argument("--protocol", required=True,
                   choices=PROTOCOLS,
                   help="dala 6:1:3, ernet 70/30 + 5 folds in the 70 %%, modres 60/20/20, "
                   "breakhis-official the BreakHis authors' dsfold1..5 test sets")
    p.add_argument("--group", choices=["patient"], help="no patient in two splits")
    p.add_argument("--patient-from", choices=PATIENT_FROM,
                   help="grouped splits: a patient is the BreakHis slide token (22549AB) or its "
                   "numeric part (22549); default: the manifest's patient_id (breakhis-official: slide)")
    p.add_argument("--fold", help="breakhis-official: fold 1-5, or 'all' (then --out must hold "
                   "'{fold}', e.g. data_manifests/breakhis-official/fold{fold}.csv)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="breakhis-official: share of the authors' training images (whole "
                   "patients) used for validation (default 0.1)")
    p.add_argument("--reference", help="breakhis-official: reference manifest holding the "
                   "authors' folds (default: data_manifests/breakhis.csv of this checkout)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--stratify", default="label",
                   help="column(s) to stratify by, comma-separated (default: label)")
    p.add_argument("--out", required=True, help="split CSV to write, e.g. data_manifests/NAME.csv")
    p.add_argument("--force", action="store_true", help="replace an existing, different split file")


def _run_split(args: argparse.Namespace) -> int:
    from breastcam.data import make_split, read_manifest, write_split
    from breastcam.errors import UsageError

    df = read_manifest(args.manifest)
    if args.protocol == "breakhis-official":
        return _split_official(args, df)
    if args.fold is not None:
        raise UsageError("--fold applies to --protocol breakhis-official (ernet's folds are all "
                         "in one split file: choose one at training time with data.fold)")
    official_only = [flag for flag, value in (("--val-fraction", args.val_fraction), ("--reference", args.reference))
                     if value is not None]
    if official_only:
        verb = "applies" if len(official_only) == 1 else "apply"
        raise UsageError(f"{' and '.join(official_only)} {verb} to --protocol breakhis-official only; --protocol "
                         f"{args.protocol} fixes its own ratios (see --help): leave it out")
    stratify = [c.strip() for c in args.stratify.split(",") if c.strip()]
    split = make_split(df, args.protocol, group=args.group, seed=args.seed, stratify=stratify,
                       patient_from=args.patient_from)
    _report_split(split, write_split(split, args.out, force=args.force), args.out)
    return 0


def _split_official(args: argparse.Namespace, df) -> int:
    from pathlib import Path

    from breastcam.data import read_manifest, write_split
    from breastcam.data.official import FOLDS, attach_official_folds, official_split
    from breastcam.errors import UsageError

    if args.fold is None:
        raise UsageError("--protocol breakhis-official needs --fold 1-5 or --fold all")
    folds = list(FOLDS) if args.fold == "all" else [int(args.fold)] if args.fold.isdigit() else None
    if folds is None:
        raise UsageError(f"--fold {args.fold!r}: give 1-5 or all")
    if len(folds) > 1 and "{fold}" not in args.out:
        raise UsageError("--fold all writes five files: put '{fold}' in --out, e.g. "
                         "data_manifests/breakhis-official/fold{fold}.csv")
    reference = args.reference or Path(__file__).resolve().parents[1] / "data_manifests" / "breakhis.csv"
    if not all(f"official_fold{k}" in df.columns for k in FOLDS):
        df = attach_official_folds(df, read_manifest(reference))
    given = {} if args.val_fraction is None else {"val_fraction": args.val_fraction}  # else official_split's
    for fold in folds:
        split = official_split(df, fold, seed=args.seed, patient_from=args.patient_from or "slide", **given)
        out = args.out.replace("{fold}", str(fold))
        print(f"fold {fold}:")
        _report_split(split, write_split(split, out, force=args.force), out)
    return 0


def _report_split(split, digest: str, out: str) -> None:
    from breastcam.data.splits import describe_split, patient_overlap

    print(describe_split(split).to_string())
    if "fold" in split.columns:
        folds = split[split["fold"] >= 0].groupby("fold")
        print("validation rows per fold: " + ", ".join(f"{k}: {len(g)}" for k, g in folds))
    shared = patient_overlap(split)
    print(f"patients in more than one split: {len(shared)}")
    print(f"sha256 {digest}  {out}")


def _add_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", nargs="?", help="manifest or split CSV (or use --against)")
    p.add_argument("--against", metavar="REFERENCE",
                   help="check the download under --root against a reference manifest, e.g. "
                   "data_manifests/breakhis.csv: missing, extra, misplaced, mislabelled files too")
    p.add_argument("--allow-partial", action="store_true",
                   help="with --against: report missing files without failing on them")
    p.add_argument("--max-listed", type=int, default=20, metavar="N",
                   help="with --against: lines listed per kind of problem (0: all; default 20)")
    p.add_argument("--root", help="dataset root the paths are relative to "
                   "(default: the manifest's folder)")
    p.add_argument("--classes", help="class names in label_index order, comma-separated "
                   "(default: inferred from the rows)")
    p.add_argument("--workers", type=_positive_int, help="decoding threads (default: CPU count, max 16)")


def _run_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from breastcam.data import format_problems, read_manifest, validate_manifest

    if args.against or not args.manifest:
        return _validate_against(args)
    df = read_manifest(args.manifest)
    root = Path(args.root) if args.root else Path(args.manifest).resolve().parent
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    problems = validate_manifest(df, root, classes=classes, workers=args.workers)
    print(format_problems(problems, len(df), n_classes=df["label"].nunique()))
    if sum(p.kind == "missing" for p in problems) == df["path"].nunique() > 0:
        print(f"hint: no file of the manifest exists under {root}; give the dataset root with "
              "--root", file=sys.stderr)
    return 1 if problems else 0


def _validate_against(args: argparse.Namespace) -> int:
    from breastcam.data import read_manifest
    from breastcam.data.against import failed, format_against, validate_against
    from breastcam.errors import UsageError

    if not args.against or args.manifest:
        raise UsageError("give a MANIFEST to check, or --against REFERENCE --root DIR to check a "
                         "download against a reference manifest (not both)")
    reference = read_manifest(args.against)
    problems, root, present = validate_against(reference, args.root or ".", workers=args.workers)
    print(format_against(problems, len(reference), present, allow_partial=args.allow_partial,
                         max_listed=args.max_listed))
    if not present:
        print(f"hint: no image of {args.against} under {root}; give the folder holding the "
              "release's top folder with --root", file=sys.stderr)
    return 1 if failed(problems, args.allow_partial) else 0


# --- models ----------------------------------------------------------------------------------


def _add_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown", help="output format (default markdown)")
    p.add_argument("--names", default=None, help="comma-separated model names (default: all registered)")
    p.add_argument("--input-size", type=_positive_int, default=None, metavar="N", help="build every model at N x N instead of its default size")
    p.add_argument("--no-flops", action="store_true", help="skip the GFLOPs column")
    p.add_argument("--out", default=None, help="also write the table to this file")
    p.add_argument("--no-published-counts", action="store_true",
                   help="skip the table of the papers' printed parameter counts and their reproduction")


def _run_models(args: argparse.Namespace) -> int:
    from breastcam.models.summary import size_table
    from breastcam.report.tables import to_markdown

    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    table = size_table(names, flops=not args.no_flops, input_size=args.input_size)
    text = table.to_csv(index=False) if args.format == "csv" else to_markdown(table)
    if not args.no_published_counts:  # issue 11: which printed count is reproduced, and how
        from breastcam.models.param_check import published_count_table

        counts = published_count_table(names)
        if len(counts):
            text += "\n" + (counts.to_csv(index=False) if args.format == "csv" else
                            "Published parameter counts (✓ reproduced exactly; offset = Keras' BN "
                            "statistics and conv biases, not in PyTorch's count):\n\n" + to_markdown(counts))
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


# --- train / evaluate ------------------------------------------------------------------------


def _int_in(minimum: int, maximum: int | None = None, what: str = "int"):
    """argparse type: an int in ``[minimum, maximum]``, refused with the range named."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got {value}")
        return value

    return parse


_positive_int = _int_in(1)  # a count, a size, a batch
_non_negative_int = _int_in(0)
_seed = _int_in(0, 2 ** 32 - 1, "a seed")  # NumPy's and scikit-learn's range


def _list_of(parse):
    """argparse type: comma-separated values, each read by ``parse`` (e.g. ``0,1,2``)."""
    def parse_list(text: str) -> list:
        return [parse(v.strip()) for v in text.split(",") if v.strip()]

    return parse_list


_int_list = _list_of(_non_negative_int)  # folds
_seed_list = _list_of(_seed)


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="run config YAML (see experiments/protocols/)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config values, e.g. train.epochs=5 data.manifest=split.csv")
    p.add_argument("--folds", type=_int_list, default=None, help="run these folds, e.g. 0,1,2,3,4")
    p.add_argument("--seeds", type=_seed_list, default=None, help="repeat with these seeds, e.g. 0,1,2")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")


def _run_train(args: argparse.Namespace) -> int:
    from breastcam.train import run, run_repeated

    verbose = 0 if args.quiet else 2
    if args.folds is None and args.seeds is None:
        print(run(args.config, args.set, verbose=verbose))
    else:
        for run_dir in run_repeated(args.config, args.set, folds=args.folds, seeds=args.seeds, verbose=verbose):
            print(run_dir)
    return 0


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--n-bootstrap", type=_non_negative_int, default=1000, help="bootstrap resamples (0: no CIs)")
    p.add_argument("--seed", type=_seed, default=0, help="bootstrap seed")
    p.add_argument("--stratify", action="store_true", help="bootstrap within each class")
    p.add_argument("--model-file", default=None, help="model file in the run (default: its best checkpoint)")
    p.add_argument("--data-root", default=None, help="dataset root, if moved since training")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="default: the run's train.batch_size")
    p.add_argument("--iba-alpha", type=float, default=0.1)
    p.add_argument("--iba-squared", action="store_true", help="square the G-mean inside the IBA")
    p.add_argument("--ece-bins", type=_positive_int, default=15)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--uncertainty", default="none", metavar="tta:K|mc:K|none",
                   help="tta:K: also the mean over K test-time views (the run's augmentation family); "
                   "mc:K: over K draws with the model's dropout on (MC dropout); with its entropy and "
                   "trust measures (default none)")
    p.add_argument("--group-by", nargs="*", default=[], metavar="COLUMN",
                   help="also write metrics per value of these manifest columns, e.g. magnification")


def _run_evaluate(args: argparse.Namespace) -> int:
    from breastcam.evaluate import evaluate_run

    for run_dir in args.run_dirs:
        m = evaluate_run(
            run_dir, split=args.split, n_bootstrap=args.n_bootstrap, seed=args.seed,
            stratify=args.stratify, data_root=args.data_root,
            **({"model_file": args.model_file} if args.model_file else {}),
            batch_size=args.batch_size, iba_alpha=args.iba_alpha, iba_squared=args.iba_squared,
            ece_bins=args.ece_bins, figures=not args.no_figures, group_by=args.group_by,
            uncertainty=args.uncertainty,
        )
        ci = m.get("ci") or {}
        parts = []
        for key in ("accuracy", "f1_macro", "roc_auc"):
            value = m.get(key)
            text = "n/a" if value is None else f"{value:.4f}"
            if ci.get(key):
                text += f" [{ci[key][0]:.4f}, {ci[key][1]:.4f}]"
            parts.append(f"{key} {text}")
        print(f"{run_dir}: n={m['n']} " + ", ".join(parts))
    return 0


def _add_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run with validation images")
    p.add_argument("--alpha", type=float, default=0.1,
                   help="conformal miscoverage: sets hold the true class >= 1 - alpha of the time (default 0.1)")
    p.add_argument("--score", choices=["lac", "aps"], default="lac", help="conformal score (default lac)")
    p.add_argument("--method", choices=["temperature", "vector"], default="temperature",
                   help="temperature scaling (one scalar, default) or vector scaling (a scale and a "
                        "bias per class, on log-probabilities)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the split of validation into halves")
    p.add_argument("--data-root", default=None, help="dataset root, if moved since training")
    p.add_argument("--reset", action="store_true", help="remove the run's calibration instead")


def _run_calibrate(args: argparse.Namespace) -> int:
    from breastcam.evaluate.calibrate_run import calibrate_run, reset_calibration

    if args.reset:
        print(f"{args.run_dir}: calibration {'removed' if reset_calibration(args.run_dir) else 'was not set'}")
        return 0
    c = calibrate_run(args.run_dir, alpha=args.alpha, score=args.score, seed=args.seed,
                      method=args.method, data_root=args.data_root)
    v = c["validation"]
    fitted = (f"temperature {c['temperature']:.3f}" if c["temperature"] is not None else
              "vector scaling (scale " + ", ".join(f"{w:.3f}" for w in c["vector"]["scale"])
              + "; bias " + ", ".join(f"{b:.3f}" for b in c["vector"]["bias"]) + ")")
    print(f"{args.run_dir}: {fitted} (NLL {v['nll_before']:.4f} -> {v['nll_after']:.4f}, "
          f"ECE {v['ece_before']:.4f} -> {v['ece_after']:.4f}); conformal {c['conformal']['score']} alpha "
          f"{args.alpha}: threshold {c['conformal']['threshold']:.4f}, coverage {v['coverage_conformal_half']:.3f}, "
          f"mean set size {v['mean_set_size_conformal_half']:.2f} on the held-out half "
          f"({c['fitted_on']['conformal_images']} images)")
    return 0


def _add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--split", default="test")
    p.add_argument("--out", default=None, help="also write the result to this JSON file")


def _run_compare(args: argparse.Namespace) -> int:
    import json

    from breastcam.evaluate import compare_runs

    print(json.dumps(compare_runs(args.run_a, args.run_b, split=args.split, out=args.out), indent=2))
    return 0


def _add_aggregate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="repeated runs or folds")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for aggregate.csv/.json, curves.png")
    p.add_argument("--split", default="test")


def _run_aggregate(args: argparse.Namespace) -> int:
    from breastcam.evaluate import aggregate_runs

    table = aggregate_runs(args.run_dirs, args.out, split=args.split)
    shown = table[table["metric"].isin(["accuracy", "f1_macro", "f1_weighted", "roc_auc", "g_mean"])]
    for row in shown.itertuples():
        print(f"{row.metric}: {row.mean:.4f} +- {row.std:.4f} (n={row.n})")
    print(f"wrote {args.out}/aggregate.csv, aggregate.json")
    return 0


# --- explain ---------------------------------------------------------------------------------


def _param_value(text: str):
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _add_explain(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="a run folder, a .keras file, or a registered model NAME (built with --weights, "
                   "default random)")
    p.add_argument("--images", required=True, nargs="+", metavar="PATH", help="image files and/or folders")
    p.add_argument("--method", nargs="+", default=["dtgradcam"], choices=CAM_METHODS, metavar="METHOD",
                   help="CAM method(s): %(choices)s (default dtgradcam); several write one folder each")
    p.add_argument("--html", action="store_true",
                   help="also write viewer.html: every image and method in one offline page (method "
                        "switch, class toggle, opacity, boxes, known regions, probabilities)")
    p.add_argument("--masks", default=None, metavar="DIR",
                   help="region masks: a folder of <stem>[_mask].png|.npy files, or a mini-MIAS folder "
                   "holding Info.txt (lesion circles)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--num-classes", type=_positive_int, default=2, help="for a registry NAME (default 2)")
    p.add_argument("--input-size", type=_positive_int, default=None, help="for a registry NAME: square input side")
    p.add_argument("--weights", default=None, help="for a registry NAME: weights file or 'imagenet'")
    p.add_argument("--layer", default="auto",
                   help="CAM layer: auto (default: the last spatial layer the class score depends on; "
                        "nested models searched as outer/inner, ViT/DINOv2 tokens laid out as their grid) "
                        "or a layer name")
    p.add_argument("--preprocessing", default=None,
                   help="for a .keras file of your own (default: the run's, else the registry's for the model)")
    p.add_argument("--target", type=int, default=None, help="class index to explain (default: predicted)")
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.add_argument("--faithfulness", action="store_true",
                   help="also measure deletion/insertion areas (2 x --steps extra forward passes per image) "
                        "and ROAD (MoRF / LeRF with noisy linear imputation, 18 more)")
    p.add_argument("--steps", type=_positive_int, default=20, help="deletion/insertion steps with --faithfulness (default 20)")
    p.add_argument("--param", nargs="*", default=[], type=_param_value, metavar="KEY=VALUE",
                   help="method parameters, e.g. n_samples=8 sigma=0.1 top_k=64 version=1")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from breastcam.data.image_paths import expand_image_paths
    from breastcam.data.preflight import bad_files_message, find_bad_files
    from breastcam.errors import DataError
    from breastcam.explain.read_ahead import ReadAhead
    from breastcam.explain.registry import canonical_method, get_cam
    from breastcam.explain.run import (as_trained, check_model_argument, explain_files, load_model,
                                       method_params)

    check_model_argument(args.model)
    files = expand_image_paths(args.images)
    bad = find_bad_files([str(f) for f in files])  # every file checked before anything is loaded
    if bad:
        raise DataError(bad_files_message(bad, len(files), "the images to explain",
                                          hint="Replace them or leave them out of --images."))
    methods = list(dict.fromkeys(canonical_method(m) for m in args.method))
    params = dict(args.param)
    cams = {}  # with --html: the CAM objects, reused by the viewer (one trace per method)
    with ReadAhead(files) as ahead:  # the first method's files decode while the model loads
        model = load_model(args.model, num_classes=args.num_classes, input_size=args.input_size,
                           weights=args.weights, preprocessing=args.preprocessing)
        trained = as_trained(model, args.preprocessing)
        for k, name in enumerate(methods):  # one folder per method when there are several
            out = Path(args.out) / name if len(methods) > 1 else Path(args.out)
            method, layer, method_kw = name, args.layer, method_params(name, params, several=len(methods) > 1)
            if args.html:
                method = cams[name] = get_cam(name, trained.network, layer, batch_size=args.batch_size, **method_kw)
                layer, method_kw = None, {}
            frame = explain_files(
                trained, files, method, out_dir=out, masks=args.masks, batch_size=args.batch_size,
                targets=args.target, layer=layer, faithfulness=args.faithfulness, steps=args.steps,
                progress=not args.quiet, read_ahead=ahead if k == 0 else None, **method_kw,
            )
            print(f"explained {len(frame)} images with {name}: {out}/metrics.csv")
    if args.html:
        from breastcam.explain.viewer_data import viewer_items
        from breastcam.report.viewer import write_viewer

        items = viewer_items(trained, files, cams, masks=args.masks, batch_size=args.batch_size)
        path = write_viewer(Path(args.out) / "viewer.html", items, methods, trained.class_names,
                            title=f"{trained.network.name}: {', '.join(methods)}",
                            note=f"{len(items)} images; model {args.model}")
        print(f"viewer (one offline page): {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _add_sanity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a run folder or a .keras file (with --preprocessing)")
    p.add_argument("--images", required=True, nargs="+", metavar="PATH", help="image files and/or folders (2-64)")
    p.add_argument("--method", nargs="+", default=["gradcam", "gradcampp", "dtgradcam"], choices=CAM_METHODS,
                   metavar="METHOD", help="CAM methods to check: %(choices)s (default gradcam gradcampp dtgradcam)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--steps", type=_positive_int, default=5,
                   help="groups of layers randomised from the top down (default 5: the classifier, then 4)")
    p.add_argument("--mode", nargs="+", default=["cascading", "independent"], choices=["cascading", "independent"])
    p.add_argument("--threshold", type=float, default=0.5,
                   help="pass when the upper 95 %% bound of the Spearman correlation with every layer random "
                        "is below this (default 0.5)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--layer", default="auto", help="CAM layer (default auto)")
    p.add_argument("--preprocessing", default=None, help="for a .keras file of your own")
    p.add_argument("--data-randomisation", "--data-randomization", action="store_true",
                   help="also retrain the run (a run folder) on permuted labels and compare its maps with the "
                        "trained model's (Adebayo et al. 2018, section 5): a model's training time again")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="epochs of the permuted-label training (default: the run's)")


def _run_sanity(args: argparse.Namespace) -> int:
    from breastcam.explain.run import load_model
    from breastcam.explain.sanity_run import sanity_files

    model = load_model(args.model, preprocessing=args.preprocessing)
    result = sanity_files(model, args.images, args.method, out_dir=args.out, preprocessing=args.preprocessing,
                          layer=args.layer, steps=args.steps, modes=args.mode, seed=args.seed,
                          threshold=args.threshold, data_randomisation=args.data_randomisation,
                          epochs=args.epochs, log=(print if args.data_randomisation else (lambda _: None)))
    for method, v in result.verdicts.items():
        print(f"{method}: {'passes' if v['passes'] else 'FAILS'} (Spearman with every layer random "
              f"{v['spearman']:.3f}, 95 % CI up to {v['spearman_ci_high']:.3f})")
    if result.data is not None:
        for method, v in result.data.verdicts.items():
            print(f"{method}: {'passes' if v['passes'] else 'FAILS'} the data randomisation (Spearman with the "
                  f"permuted-label model {v['spearman']:.3f}, 95 % CI up to {v['spearman_ci_high']:.3f})")
        fit = result.data.fit
        print(f"the permuted-label run fit its labels to a training accuracy of {fit['accuracy']:.3f} "
              f"(largest class {fit['chance']:.3f}) in {fit['epochs']} epoch(s)")
    figures = "sanity_strip.png" + (", data_randomisation.png" if result.data is not None else "")
    print(f"table, figures and verdicts: {args.out}/sanity.md, {figures}")
    return 0


# --- reproduce / export / demo ---------------------------------------------------------------


def _add_reproduce(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="experiment name (see --list), e.g. dala-breakhis")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--data-dir", help="the dataset's root folder")
    p.add_argument("--quick", action="store_true",
                   help="the experiment's small smoke-test version (few images, 1-2 epochs)")
    p.add_argument("--out", default="reports", help="report folder (default: reports)")
    p.add_argument("--force", action="store_true",
                   help="replace existing, different split files in data_manifests/")
    p.add_argument("--seeds", type=_seed_list, default=None, help="training seeds, e.g. 0,1,2")
    p.add_argument("--models", nargs="+", default=None, help="run only these of its models")
    p.add_argument("--protocols", nargs="+", default=None, help="run only these of its protocols")
    p.add_argument("--verbose", action="store_true", help="per-epoch training output")
    p.add_argument("--allow-partial", action="store_true",
                   help="run on a folder that is not the complete release (data_manifests/); "
                   "its images are split afresh instead of using the committed splits "
                   "(--quick implies it)")
    rehearsal = p.add_argument_group("rehearsal: every planned run for a few steps at full "
                                     "image counts; timing, memory, projected full time")
    rehearsal.add_argument("--rehearse", action="store_true",
                           help="write reports/NAME/rehearsal.md instead of reproducing")
    rehearsal.add_argument("--steps", type=_positive_int, default=3,
                           help="with --rehearse: training and validation steps per run (default 3)")
    rehearsal.add_argument("--rehearse-runs", choices=["all", "group", "model"], default="all",
                           help="with --rehearse: train all runs, one per (subset, protocol, "
                           "model), or one per model; the others are projected (default all)")
    rehearsal.add_argument("--random-weights", action="store_true",
                           help="with --rehearse: weights=None instead of pretrained weights "
                           "(offline machines; the step time is the same)")
    study = p.add_argument_group("studies: spread the runs over processes, GPUs, machines "
                                 "(docs/STUDIES.md)")
    mode = study.add_mutually_exclusive_group()
    mode.add_argument("--plan", action="store_true",
                      help="write the splits, plan.json and runs.txt under --out; train nothing")
    mode.add_argument("--run", metavar="ID", help="run one planned run (an id of plan.json)")
    mode.add_argument("--run-index", type=int, metavar="K",
                      help="run the K-th planned run, 0-based (a SLURM array task id)")
    mode.add_argument("--collect", action="store_true",
                      help="report the finished runs; list the missing and failed ones")
    mode.add_argument("--workers", type=_positive_int, metavar="N",
                      help="run N planned runs at a time as separate processes, then collect")
    study.add_argument("--gpus", type=lambda t: [g for g in t.split(",") if g], default=None,
                       help="with --workers: GPU ids, one per process in turn, e.g. 0,1,2,3")
    study.add_argument("--stale-after", type=float, default=900.0, metavar="SECONDS",
                       help="a run's claim without heartbeat for this long is taken over "
                            "(default 900)")


def _run_study(args: argparse.Namespace) -> int:
    from breastcam.errors import UsageError
    from breastcam.report import load_experiment
    from breastcam.reproduce import study as studies
    from breastcam.reproduce.plan_file import study_dir
    from breastcam.reproduce.workers import run_workers

    if not args.name:
        raise UsageError("give the experiment NAME (see --list)")
    planning = args.plan or (args.workers is not None and args.data_dir)
    given = [flag for flag, value in (("--data-dir", args.data_dir), ("--quick", args.quick),
             ("--seeds", args.seeds), ("--models", args.models), ("--protocols", args.protocols),
             ("--force", args.force)) if value]
    if given and not planning:
        raise UsageError(f"{', '.join(given)} only apply when planning (--plan, or --workers "
                         "with --data-dir); --run and --collect read everything from plan.json")
    if args.gpus is not None and args.workers is None:
        raise UsageError("--gpus goes with --workers")
    folder = study_dir(args.name, args.out)
    if planning:
        if not args.data_dir:
            raise UsageError("--plan needs --data-dir (the dataset's root folder)")
        plan = studies.plan_study(load_experiment(args.name), args.data_dir, args.out,
                                  quick=args.quick, seeds=args.seeds, models=args.models,
                                  protocols=args.protocols, force=args.force)
        if args.plan:  # the estimate builds every model once: only when asked to plan
            print(studies.estimate_text(plan))
            return 0
        print(f"{plan['name']}: {len(plan['runs'])} run(s) planned in {folder}")
    verbose = 2 if args.verbose else 0
    if args.collect:
        return studies.collect_study(folder)
    if args.workers is not None:
        _, summary = run_workers(folder, args.workers, args.gpus, stale_after=args.stale_after,
                                 verbose=args.verbose)
        return 0 if summary["failed"] == 0 and summary["missing"] == 0 else 1
    return studies.run_planned(folder, args.run, args.run_index, stale_after=args.stale_after,
                               verbose=verbose)


def _run_reproduce(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from breastcam.reproduce import list_experiments, reproduce

    if args.list:
        for name, title, path in list_experiments():
            print(f"{name:18s} {title}")
        return 0
    if args.rehearse:
        from breastcam.reproduce.rehearse import rehearse

        if not args.name or not args.data_dir:
            raise UsageError("--rehearse needs an experiment NAME and --data-dir")
        print(rehearse(args.name, args.data_dir, steps=args.steps, out_dir=args.out,
                       pick=args.rehearse_runs, quick=args.quick, models=args.models,
                       protocols=args.protocols, seeds=args.seeds,
                       random_weights=args.random_weights))
        return 0
    if args.plan or args.run or args.run_index is not None or args.collect or args.workers is not None:
        return _run_study(args)
    if not args.name or not args.data_dir:
        raise UsageError("give an experiment NAME and --data-dir (or --list to see the names)")
    html = reproduce(args.name, args.data_dir, quick=args.quick, out_dir=args.out,
                     seeds=args.seeds, force=args.force, models=args.models,
                     protocols=args.protocols, verbose=2 if args.verbose else 0,
                     allow_partial=args.allow_partial)
    print(html)
    status = Path(html).parent / "status.json"
    failed = json.loads(status.read_text()).get("failed", 0) if status.is_file() else 0
    if failed:
        print(f"breastcam reproduce: {failed} run(s) failed; see the report's notes",
              file=sys.stderr)
    return 1 if failed else 0


def _add_export(p: argparse.ArgumentParser) -> None:
    from breastcam.runs.files import EXPORT_FORMATS

    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="savedmodel",
                   help="savedmodel (raw images in, stain and preprocessing inside), keras, onnx or "
                   "litert (pip install 'breastcam[export]'); every file is verified by running it")
    p.add_argument("--out", default=None, help="destination (default: RUN_DIR/export/...)")
    p.add_argument("--force", action="store_true", help="replace an existing export at the destination")


def _run_export(args: argparse.Namespace) -> int:
    from breastcam.export import export_run

    print(export_run(args.run_dir, args.format, args.out, force=args.force))
    return 0


def _add_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run folder, an exported SavedModel folder or .keras file (breastcam export)")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF, PGM, ...) and/or folders (searched for images)")
    p.add_argument("--explain", choices=["dtgradcam"], default=None, help="also write DT Grad-CAM overlays")
    p.add_argument("--out", default=None, help="folder for predictions.csv (and overlays)")
    p.add_argument("--refer-above", type=float, default=None, metavar="U",
                   help="mark images to refer to a human: predictive entropy above U (nats), or a "
                   "conformal set of other than one class (calibrated runs)")


def _run_predict(args: argparse.Namespace) -> int:
    from breastcam.export import predict_images

    df = predict_images(args.model, args.images, explain=args.explain is not None, out_dir=args.out,
                        refer_above=args.refer_above)
    print(df.to_string(index=False))
    return 0


def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--epochs", type=_positive_int, default=8)
    p.add_argument("--image-size", type=_positive_int, default=64)


def _run_demo(args: argparse.Namespace) -> int:
    import json

    from breastcam.demo import run_demo

    summary = run_demo(args.out, epochs=args.epochs, image_size=args.image_size)
    print(json.dumps(summary, indent=2))
    return 0

def _add_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--like", required=True, choices=_Registry("breastcam.data.loaders:DATASETS", drop=("folder",)),
                   help="dataset whose reference manifest (data_manifests/<name>.csv) gives names and layout")
    p.add_argument("--out", required=True, help="folder to write the tree into (the dataset root)")
    p.add_argument("--fraction", type=float, default=1.0, help="share of each class to write (default 1)")
    p.add_argument("--size", default=None, help="HxW in pixels instead of the dataset's (e.g. 1600x1000)")
    p.add_argument("--seed", type=_seed, default=0)


def _run_synth(args: argparse.Namespace) -> int:
    from breastcam.data.manifest import read_manifest
    from breastcam.data.synth_like import synth_like
    from breastcam.errors import UsageError
    from breastcam.resources import data_manifests_dir

    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2:
            raise UsageError(f"--size {args.size!r}: write height x width, e.g. 1600x1000")
    reference = read_manifest(data_manifests_dir() / f"{args.like}.csv")
    rows = synth_like(reference, args.out, args.like, fraction=args.fraction, size=size, seed=args.seed)
    print(f"wrote {len(rows)} synthetic {args.like} images under {args.out} "
          f"(names and layout of data_manifests/{args.like}.csv; content is synthetic)")
    return 0


# Every subcommand: (name, help, add-arguments function, run function). Order = order in --help.
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = [
    ("demo", "offline end-to-end demo on generated data (train, evaluate, explain)", _add_demo, _run_demo),
    ("manifest", "list a dataset folder's images with labels and patient ids (a manifest CSV)", _add_manifest, _run_manifest),
    ("synth", "write a full-size synthetic copy of a dataset (real names, sizes, formats) for rehearsals", _add_synth, _run_synth),
    ("validate", "decode every file of a manifest and report all problems at once", _add_validate, _run_validate),
    ("split", "add a protocol split (dala, ernet, modres; --group patient) to a manifest", _add_split, _run_split),
    ("models", "list the model zoo: parameters, GFLOPs, CAM layer, published counts", _add_models, _run_models),
    ("train", "train a model from a run config (resumes an interrupted run)", _add_train, _run_train),
    ("evaluate", "evaluate finished runs: predictions.csv, metrics.json (with CIs), figures", _add_evaluate, _run_evaluate),
    ("calibrate", "fit a run's temperature (or vector scaling) and conformal prediction sets on its validation split", _add_calibrate, _run_calibrate),
    ("compare", "paired tests of two runs on the same test images (McNemar, DeLong)", _add_compare, _run_compare),
    ("aggregate", "mean +- std of repeated runs / folds, curves with error bars", _add_aggregate, _run_aggregate),
    ("explain", "explain images with a CAM method: overlays, maps, metrics.csv", _add_explain, _run_explain),
    ("sanity", "model-randomisation sanity checks of CAM methods (Adebayo et al. 2018): table, strip, verdicts", _add_sanity, _run_sanity),
    ("reproduce", "rerun a paper's table (experiments/*.yaml): splits, runs, HTML report", _add_reproduce, _run_reproduce),
    ("export", "export a run's model with its model card: SavedModel (with an explain signature), .keras, ONNX, LiteRT", _add_export, _run_export),
    ("predict", "classify (and explain) image files with a run or an exported model", _add_predict, _run_predict),
]


# Global flags, accepted before or after the subcommand (``breastcam --quiet validate ...`` or
# ``breastcam validate ... --quiet``); a subcommand that has its own flag of the name keeps it.
GLOBAL_FLAGS = (
    ("--debug", "on an error, show the Python traceback (default: one-paragraph message)"),
    ("--verbose", "keep TensorFlow's start-up and C++ log lines and OpenCV's"),
    ("--quiet", "no progress bars"),
)


def build_parser() -> argparse.ArgumentParser:
    from breastcam import __version__

    parser = argparse.ArgumentParser(
        prog="breastcam",
        description="Reproduce breast-cancer imaging papers end to end: data, models, training, "
        "evaluation, explanations, reports.",
    )
    parser.add_argument("--version", action="version", version=f"breastcam {__version__}")
    for flag, help_text in GLOBAL_FLAGS:
        parser.add_argument(flag, dest=f"global_{flag[2:]}", action="store_true", help=help_text)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, add, run in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        for flag, flag_help in GLOBAL_FLAGS:
            if flag not in p._option_string_actions:
                p.add_argument(flag, action="store_true", default=False, help=flag_help)
        p.set_defaults(_run=run)
    return parser


def _report_error(command: str, err: BaseException, debug: bool) -> int | None:
    """Print a breastcam error as one paragraph and return its exit code (``None``: a bug)."""
    from breastcam.console import find_breastcam_error, one_paragraph

    found = find_breastcam_error(err)
    if found is None and isinstance(err, (FileExistsError, NotADirectoryError)) and err.filename:
        # an output folder given where a file stands (--out image.png): the user's to fix, not a bug
        why = "a file of that name exists" if isinstance(err, FileExistsError) else "a part of its path is a file"
        found = OutputExistsError(f"cannot make the folder {err.filename}: {why}; choose another output folder")
    if found is None:
        return None
    if debug:
        import traceback

        traceback.print_exception(err)
    print(f"breastcam {command}: error: {one_paragraph(str(found))}", file=sys.stderr)
    return 2 if isinstance(found, UsageError) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A :class:`~breastcam.errors.BreastcamError` (also one TensorFlow
    re-raised from inside ``tf.data``) prints ``breastcam CMD: error: MESSAGE`` and returns 1
    (2 for usage errors), without a traceback unless ``--debug``; other errors are bugs and
    keep theirs."""
    from breastcam import console

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    for flag, _ in GLOBAL_FLAGS:  # global flag given before or after the subcommand
        name = flag[2:]
        setattr(args, name, bool(getattr(args, f"global_{name}") or getattr(args, name, False)))
    console.set_progress(not args.quiet)
    try:
        if not args.verbose and args.command in TENSORFLOW_COMMANDS:
            console.quiet_tensorflow()
        with console.short_warnings(args.command):
            code = args._run(args)
    except KeyboardInterrupt:  # Ctrl-C: a line saying what is kept, not a traceback
        if args.debug:
            raise
        print(f"breastcam {args.command}: interrupted{_AFTER_INTERRUPT.get(args.command, '')}", file=sys.stderr)
        return 130  # the shell's code for a SIGINT
    except Exception as err:  # noqa: BLE001 - sorted into breastcam errors and bugs below
        code = _report_error(args.command, err, args.debug)
        if code is None:
            raise
    return int(code or 0)


# What an interrupted command leaves, and how to go on.
_AFTER_INTERRUPT = {
    "train": "; the same command resumes the run from its last finished epoch",
    "reproduce": "; the same command goes on: finished runs are kept, the interrupted one resumes from its "
                 "last finished epoch",
    "demo": "; the same command resumes its training run",
}


# Commands that import TensorFlow (silenced on import unless --verbose).
TENSORFLOW_COMMANDS = frozenset(
    {"demo", "validate", "models", "train", "evaluate", "calibrate", "compare", "aggregate", "explain", "sanity",
     "reproduce", "export", "predict"})


if __name__ == "__main__":
    sys.exit(main())
