"""``breastcam sanity``: the randomisation checks of :mod:`breastcam.explain.sanity` on image files.

Writes ``sanity.csv`` (method, mode, step, layers, measure, mean, CI), ``sanity.md`` (verdicts and
table), ``sanity.json`` (verdicts, steps, settings) and ``sanity_strip.png`` (the randomisation
strip of the first image) into ``out_dir``. With ``data_randomisation`` (a run only) also the
check of :mod:`breastcam.explain.data_randomisation`: ``permuted_labels/`` (its manifest and
run), ``data_randomisation.csv``, ``data_randomisation.png``, its section of ``sanity.md`` and
its key of ``sanity.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from breastcam.data.image_paths import expand_image_paths
from breastcam.data.preflight import bad_files_message, find_bad_files
from breastcam.errors import DataError, UsageError
from breastcam.explain import sanity
from breastcam.explain.registry import canonical_method, get_cam
from breastcam.explain.run import as_trained

MAX_IMAGES = 64  # every step explains every image with every method: keep it a check, not a study


def sanity_files(model, paths: Sequence[str | os.PathLike] | str, methods: Sequence[str], *,
                 out_dir: str | os.PathLike, preprocessing: str | None = None, layer: str | None = "auto",
                 steps: int = 5, modes: Sequence[str] = sanity.MODES, seed: int = 0,
                 threshold: float = 0.5, n_bootstrap: int = 1000, data_randomisation: bool = False,
                 epochs: int | None = None, log=print) -> sanity.SanityResult:
    """Check ``methods`` on the images ``paths`` (files or folders) for ``model`` (a run, a
    ``.keras`` file or a TrainedModel); returns the result and writes its files.
    ``data_randomisation`` retrains the run on permuted labels (``epochs``: default the run's)
    and compares the maps too (``result.data``)."""
    from breastcam.runs import Run

    trained = as_trained(model, preprocessing)
    if data_randomisation and not (trained.source and Run.is_run(trained.source)):
        raise UsageError(f"--data-randomisation retrains the model on permuted labels from its run's config: "
                         f"give a run folder as --model, not {trained.source or 'a model object'}")
    files = expand_image_paths(paths)
    bad = find_bad_files([str(f) for f in files])
    if bad:
        raise DataError(bad_files_message(bad, len(files), "the images to check"))
    if len(files) > MAX_IMAGES:
        raise DataError(f"{len(files)} images: the sanity check explains every image {len(modes)} x "
                        f"{steps} times per method; give at most {MAX_IMAGES} (a CI over 16-32 images "
                        "is usually tight enough)")
    if len(files) < 2:
        raise DataError("give at least 2 images: the check reports a confidence interval over them")
    from breastcam.data.decode import read_image
    from breastcam.data.pipeline import resize_image

    pixels = tf.stack([resize_image(tf.constant(read_image(f)), trained.image_size) for f in files])
    x = trained.prepare(pixels).numpy()
    names = [canonical_method(m) for m in dict.fromkeys(methods)]
    cams = {m: get_cam(m, trained.network, layer) for m in names}
    result = sanity.sanity_check(trained.network, x, cams, steps=steps, modes=modes, seed=seed,
                                 threshold=threshold, n_bootstrap=n_bootstrap, progress=log)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out / "sanity.csv", index=False, lineterminator="\n")
    (out / "sanity.md").write_text(sanity.markdown(result), encoding="utf-8")
    summary = {"verdicts": result.verdicts, "steps": result.steps, "threshold": threshold, "modes": list(modes),
               "seed": seed, "images": [str(f) for f in files], "cam_layers": {m: c.layer for m, c in cams.items()},
               "model": trained.network.name}
    (out / "sanity.json").write_text(json.dumps(summary, indent=2, default=float))
    sanity.strip_figure(result, np.asarray(pixels[0], np.float32), out / "sanity_strip.png")
    # written before the retraining below (a model's training time): an interrupted data
    # randomisation keeps the model randomisation's files; its own are added after
    if data_randomisation:
        from breastcam.explain import data_randomisation as dr

        log(f"training {trained.source} again on permuted labels")
        permuted_dir = dr.permuted_label_run(trained.source, out / dr.PERMUTED, seed=seed, epochs=epochs)
        result.data = dr.data_randomisation_check(
            trained.network, dr.memorised_network(permuted_dir), x, cams, threshold=threshold,
            n_bootstrap=n_bootstrap, seed=seed, fit=dr.training_fit(permuted_dir))
        result.data.table.to_csv(out / "data_randomisation.csv", index=False, lineterminator="\n")
        with open(out / "sanity.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + dr.markdown(result.data))
        summary["data_randomisation"] = {"verdicts": result.data.verdicts, "fit": result.data.fit,
                                         "permuted_run": str(permuted_dir)}
        (out / "sanity.json").write_text(json.dumps(summary, indent=2, default=float))
        dr.pair_figure(result.data, np.asarray(pixels[0], np.float32), out / "data_randomisation.png")
    return result
