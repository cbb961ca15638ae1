"""Paper 000 Table 3: BreakHis images per class and magnification.

    python experiments/dala/table3_breakhis_counts.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``dala-data`` (experiments/dala/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/dala-data/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("dala-data", "paper 000 Table 3", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
