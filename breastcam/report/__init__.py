"""Report layer: the papers' published numbers, experiment definitions, comparison tables and the
HTML / Markdown report of an experiment.

- ``published``: ``load_published("000", 6)``, ``published_tables()`` (``experiments/*/published``)
- ``experiment_spec``: ``load_experiment("dala-breakhis")``, ``list_experiments()``
- ``tables``: ``comparison_table(published, reproduced)``, ``to_markdown(df)``
- ``html``: ``write_report(out_dir, ...)`` -> ``index.html`` + ``report.md``
- ``provenance``: ``package_versions()``

Nothing here imports TensorFlow.
"""

from breastcam.report.experiment_spec import (
    list_experiments,
    load_experiment,
    published_for,
    resolve_train,
)
from breastcam.report.html import write_report
from breastcam.report.provenance import package_versions
from breastcam.report.published import (
    experiments_dir,
    load_published,
    load_published_files,
    load_published_text,
    published_tables,
)
from breastcam.report.tables import comparison_table, to_markdown

__all__ = [
    "comparison_table",
    "experiments_dir",
    "list_experiments",
    "load_experiment",
    "load_published",
    "load_published_files",
    "load_published_text",
    "package_versions",
    "published_for",
    "published_tables",
    "resolve_train",
    "to_markdown",
    "write_report",
]
