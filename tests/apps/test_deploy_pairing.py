# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The Deploy app's choice of the AP and lateral radiograph among a folder's DICOM instances (pydicom only)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from xctrs_monai.apps.deploy import describe_instance, select_xray_pair


def _instance(name, modality="DX", view="", orientation=(), patient="P1"):
    ds = Dataset()
    ds.filename = f"/in/{name}"
    ds.Modality, ds.PatientID = modality, patient
    if view:
        ds.ViewPosition = view
    if orientation:
        ds.PatientOrientation = list(orientation)
    return ds


AP, LA = _instance("ap.dcm", view="AP"), _instance("la.dcm", view="LL")


def test_picks_the_pair_by_view_position_and_patient_orientation():
    ct = _instance("ct.dcm", modality="CT", view="AP")  # not a radiograph: skipped, even with ViewPosition AP
    assert select_xray_pair([LA, ct, AP]) == (AP, LA)  # order-free: not the first two files
    # no ViewPosition: PatientOrientation rows along left-right = frontal, along anterior-posterior = lateral
    ap2, la2 = _instance("f.dcm", orientation=("L", "F")), _instance("s.dcm", modality="CR", orientation=("P", "F"))
    assert select_xray_pair([la2, ap2]) == (ap2, la2)
    assert describe_instance(la2) == "'s.dcm' (CR, PatientOrientation P\\F)"


@pytest.mark.parametrize(
    "datasets, message, named",
    [
        ([AP], "No lateral radiograph in 'study'", "ap.dcm"),
        ([LA], "No frontal (AP/PA) radiograph in 'study'", "la.dcm"),
        ([AP, LA, _instance("pa.dcm", view="PA")], "Ambiguous pair in 'study': 2 frontal", "pa.dcm"),
        ([AP, LA, _instance("rl.dcm", view="RL")], "Ambiguous pair in 'study': 2 lateral", "rl.dcm"),
        ([AP, _instance("o.dcm", view="LAO")], "oblique", "ViewPosition LAO"),
        ([AP, _instance("x.dcm")], "No lateral radiograph", "no ViewPosition or PatientOrientation"),
        ([_instance("ct.dcm", modality="CT")], "No radiograph in 'study': 1 DICOM instance(s) of modality CT", "DX"),
        (
            [AP, _instance("la2.dcm", view="LL", patient="P2")],
            "different patients (PatientID 'P1' and 'P2')",
            "la2.dcm",
        ),
    ],
)
def test_refuses_with_a_message_naming_the_files(datasets, message, named):
    with pytest.raises(ValueError) as err:
        select_xray_pair(datasets, "'study'")
    assert message in str(err.value) and named in str(err.value)
