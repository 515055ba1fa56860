# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Prepare a CT dataset with vertebra labels for xctrs-monai (RAS, isotropic, cropped around C1..C7, folds).

Examples::

    python scripts/prepare_dataset.py --out data/verse --images_dir raw/verse/images --labels_dir raw/verse/labels \\
        --labels verse --patient_regex "(sub-verse\\d+)"
    python scripts/prepare_dataset.py --out data/ts --cases raw/ts/cases.csv --labels totalseg_v2 --spacing 1.25
    python scripts/prepare_dataset.py --out data/x --images_dir dicom/ --labels_dir seg/ --labels "{50: 1, 49: 2}"
"""

from __future__ import annotations

import fire

from xctrs_monai.data import prepare_dataset


def main(out: str, **kwargs) -> None:
    """Prepare the cases and print a summary.

    Args:
        out: output folder.
        kwargs: the other arguments of ``xctrs_monai.data.prepare_dataset``: ``images_dir``, ``labels_dir``
            or ``cases``; ``labels`` (a preset: verse, ctspine1k, rsna2022, totalseg_v2, totalseg_v1, or a
            mapping ``{source id: 1..7}``); ``spacing``, ``size``, ``margin_mm``, ``keep_context``, ``n_folds``,
            ``seed``, ``patient_regex``. Skipped cases are listed in ``<out>/skipped.json`` with their reason.
    """
    summary = prepare_dataset(out, **kwargs)
    print(f"written {len(summary['written'])}, already done {len(summary['done'])}, skipped {len(summary['skipped'])}")
    for s in summary["skipped"]:
        print(f"  skipped {s['case_id']}: {s['reason']}")
    for case_id, warns in summary["warnings"].items():
        for w in warns:
            print(f"  warning {case_id}: {w}")
    print(f"datalist: {summary['datalist']}")


if __name__ == "__main__":
    fire.Fire(main)
