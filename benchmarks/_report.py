"""The one way a benchmark script writes its markdown report: to ``out`` and to stdout."""

from __future__ import annotations

from pathlib import Path


def write_report(lines: list[str], out: str | Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


REPO = Path(__file__).resolve().parents[1]


def benchmark_parser(doc: str, report: str, *, rounds: int = 5):
    """The arguments every benchmark on the shared BreakHis sample takes: ``--data``, ``--rounds``
    and ``--out`` (default ``reports/benchmarks/<report>.md``); a script adds its own."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "breakhis"))
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / f"{report}.md"))
    return parser
