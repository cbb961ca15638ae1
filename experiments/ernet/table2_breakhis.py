"""Paper 003 Table 2: ERNet-50 per magnification, 5-fold mean.

    python experiments/ernet/table2_breakhis.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``ernet-breakhis`` (experiments/ernet/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/ernet-breakhis/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("ernet-breakhis", "paper 003 Table 2", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
