# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Names of the values an X-CTRSNet iteration leaves in ``engine.state.output``."""

from __future__ import annotations

__all__ = ["XCTRSKeys"]


class XCTRSKeys:
    """
    Keys of ``engine.state.output`` for the X-CTRSNet trainer and evaluator.

    ``XRAY`` is the network input (AP and LA stacked, ``B2NN``); ``CT`` and ``LABEL`` the ground truth;
    ``PRED`` the deployable output (``B9NNN``: CT + segmentation logits); ``PRED_CT`` and ``PRED_SEG`` its
    two parts; ``PRED_SEG_GT`` the segmentation of the ground-truth CT (RSC learning, trainer only);
    ``LOSS`` the total loss and ``LOSS_PREFIX + term`` (``loss_mae``, ``loss_rsc_div``, ...) every term.
    The CT is not stored under ``image`` because the batch uses that key for the CT in HU-derived [0, 1].
    """

    XRAY = "xray"
    CT = "ct"
    LABEL = "label"
    PRED = "pred"
    PRED_CT = "pred_ct"
    PRED_SEG = "pred_seg"
    PRED_SEG_GT = "pred_seg_gt"
    LOSS = "loss"
    LOSS_PREFIX = "loss_"
