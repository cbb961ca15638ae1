"""The one way a benchmark script writes its markdown report: to ``out`` and to stdout."""

from __future__ import annotations

from pathlib import Path


def write_report(lines: list[str], out: str | Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
