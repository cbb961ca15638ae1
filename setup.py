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
DATA_PATTERNS = ["*.yaml", "*.yml", "*.csv", "*.md", "*.txt", "*.json", "*.py", "*.sh"]
TEMPLATE_FOLDERS = ("slurm", "templates")  # scheduler templates: every file, whatever its name


def data_packages(package: str, folder: str) -> dict[str, list[str]]:
    """``{package name: file patterns}`` covering ``folder`` and all its subfolders.

    A subfolder whose path is made of identifiers is listed as a (namespace) package of its own:
    newer setuptools warns about, and may one day drop, data in an importable-looking folder
    that is not a listed package. Any other subfolder (``dala-breakhis/``) is covered by
    patterns of the nearest package above it. Caches and hidden folders are skipped.
    """
    root = HERE / folder
    out: dict[str, list[str]] = {}
    for path in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        parts = path.relative_to(root).parts
        if any(part == "__pycache__" or part.startswith(".") for part in parts):
            continue
        k = next((i for i, part in enumerate(parts) if not part.isidentifier()), len(parts))
        owner, prefix = ".".join([package, *parts[:k]]), "/".join(parts[k:])
        patterns = DATA_PATTERNS + (["*"] if path.name in TEMPLATE_FOLDERS else [])
        out.setdefault(owner, []).extend(f"{prefix}/{p}" if prefix else p for p in patterns)
    return out


present = {package: folder for package, folder in DATA_FOLDERS.items() if (HERE / folder).is_dir()}
package_data = {name: patterns for package, folder in present.items()
                for name, patterns in data_packages(package, folder).items()}

setup(
    packages=find_packages(where=str(HERE), include=["breastcam", "breastcam.*"]) + sorted(package_data),
    package_dir=present,
    package_data=package_data,
)
