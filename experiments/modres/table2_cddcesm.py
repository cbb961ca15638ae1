"""Paper 004 Table 2: CDD-CESM low energy, normal vs abnormal: modified ResNet50 and 5 baselines.

    python experiments/modres/table2_cddcesm.py --data-dir DIR [--quick] [--out reports]

Reproduces it with experiment ``modres-cddcesm`` (experiments/modres/*.yaml): the manifest of DIR is
checked against data_manifests/, split with the committed splits (or afresh with
--allow-partial / --quick), every model trained and evaluated, and this table's rows printed,
published beside reproduced; the full report is reports/modres-cddcesm/index.html.
"""

import sys

from breastcam.reproduce.table_script import run_table


def main(argv=None) -> int:
    return run_table("modres-cddcesm", "paper 004 Table 2", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
