"""Paper 003 Table 1: ERNet-18/34/50/101 depth ablation on BreakHis.

    python experiments/ernet/table1_depth.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``ernet-depth`` (experiments/ernet/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/ernet-depth/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("ernet-depth", "paper 003 Table 1", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
