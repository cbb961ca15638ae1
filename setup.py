"""Package layout that setup.cfg cannot express: the top-level data folders as package data.

The repository keeps ``experiments/`` (experiment YAMLs, published CSVs, per-paper scripts,
scheduler templates) and ``data_manifests/`` at the top level. A wheel must carry them, so
``package_dir`` maps the package names ``breastcam.experiments`` / ``breastcam.data_manifests``
onto those folders: the wheel holds ``breastcam/experiments/**``, read through
``importlib.resources`` by ``breastcam/resources.py``. Why this over the alternatives: no second
copy of the files in the repository (a folder inside ``breastcam/`` or a symlink, which Windows
checkouts break) and no custom build command. An editable install (PEP 660) ships nothing:
``breastcam/resources.py`` then reads the checkout's folders directly (setuptools' editable
finder maps ``breastcam.experiments`` too, but cannot import a folder without ``__init__.py``,
so nothing relies on importing that name). ``packages = find:`` in setup.cfg cannot add a
package from outside the ``breastcam/`` tree, hence ``packages`` here (setup.cfg keeps the rest).
A folder that does not exist is simply not shipped.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
DATA_FOLDERS = {"breastcam.experiments": "experiments", "breastcam.data_manifests": "data_manifests"}
# Everything a user or `breastcam reproduce` reads; not caches (__pycache__) or run outputs.
DATA_PATTERNS = ["**/*.yaml", "**/*.yml", "**/*.csv", "**/*.md", "**/*.txt", "**/*.json", "**/*.py",
                 "**/*.sh", "slurm/*"]

present = {package: folder for package, folder in DATA_FOLDERS.items() if (HERE / folder).is_dir()}

setup(
    packages=find_packages(where=str(HERE), include=["breastcam", "breastcam.*"]) + sorted(present),
    package_dir=present,
    package_data={package: DATA_PATTERNS for package in present},
)
