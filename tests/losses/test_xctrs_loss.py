# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from monai.networks.utils import one_hot
from xctrs_monai.losses import WEIGHT_KEYS, MultiViewPerceptualLoss, ProjectionConsistencyLoss, XCTRSLoss

pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features has no weights_path")

B, N = 2, 16
NUM_CLASSES = 8


def sum_projector(volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return volume.sum(dim=3), volume.sum(dim=2)


def inputs(requires_grad: bool = False) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ct = torch.rand(B, 1, N, N, N, generator=gen)
    ct_hat = (ct + 0.1 * torch.randn(ct.shape, generator=gen)).clamp(0, 1)
    label = torch.randint(0, NUM_CLASSES, (B, 1, N, N, N), generator=gen)
    seg_hat = torch.randn(B, NUM_CLASSES, N, N, N, generator=gen)
    seg_gt = one_hot(label, NUM_CLASSES) * 3.0 + 0.5 * torch.randn(B, NUM_CLASSES, N, N, N, generator=gen)
    out = {"ct_hat": ct_hat, "ct": ct, "seg_hat_logits": seg_hat, "seg_gt_ct_logits": seg_gt, "label": label}
    if requires_grad:
        for key in ("ct_hat", "seg_hat_logits", "seg_gt_ct_logits"):
            out[key].requires_grad_(True)
    return out


@pytest.fixture(scope="module")
def perceptual() -> MultiViewPerceptualLoss:
    return MultiViewPerceptualLoss(num_slices=4)


# Table 1 rows of Ge et al. (2021) plus the projection term: switches -> reported terms
TEST_CASES = [
    ({"use_mv_perceptual": False, "use_segmentation": False, "use_rsc": False}, {"mae"}),
    ({"use_segmentation": False, "use_rsc": False}, {"mae", "mv"}),
    ({"use_rsc": False}, {"mae", "mv", "seg"}),
    ({}, {"mae", "mv", "seg", "rsc_seg", "rsc_div", "rsc"}),
    ({"use_projection": True}, {"mae", "mv", "seg", "rsc_seg", "rsc_div", "rsc", "proj"}),
]


@pytest.mark.parametrize("switches, keys", TEST_CASES)
def test_ablation_switches_and_weighted_total(perceptual, switches, keys):
    weights = {"mae": 1.5, "mv": 0.5, "seg": 2.0, "rsc_seg": 0.25, "rsc_div": 3.0, "proj": 1e-3}
    loss = XCTRSLoss(
        weights=weights,
        perceptual=perceptual,
        projection=ProjectionConsistencyLoss(sum_projector),
        **switches,
    )
    terms = loss.terms(**inputs())
    assert set(terms) == keys | {"loss"}
    expected = sum(weights[k] * terms[k] for k in WEIGHT_KEYS if k in terms)
    torch.testing.assert_close(terms["loss"], expected)
    torch.testing.assert_close(loss(**inputs()), terms["loss"])
    full = XCTRSLoss(
        weights=weights, perceptual=perceptual, projection=ProjectionConsistencyLoss(sum_projector), use_projection=True
    ).terms(**inputs())
    for key in keys:  # each remaining term is the same as in the full loss
        torch.testing.assert_close(terms[key], full[key])


def test_segmentation_arguments_optional_without_mulsisnet():
    data = inputs()
    loss = XCTRSLoss(use_mv_perceptual=False, use_segmentation=False, use_rsc=False)
    assert loss.perceptual is None
    torch.testing.assert_close(loss(data["ct_hat"], data["ct"]), (data["ct_hat"] - data["ct"]).abs().mean())
    with pytest.raises(ValueError, match="label is required when use_segmentation"):
        XCTRSLoss(use_mv_perceptual=False, use_rsc=False)(data["ct_hat"], data["ct"], data["seg_hat_logits"])
    with pytest.raises(ValueError, match="seg_gt_ct_logits is required when use_rsc"):
        XCTRSLoss(use_mv_perceptual=False, use_segmentation=False)(
            data["ct_hat"], data["ct"], data["seg_hat_logits"], label=data["label"]
        )


def test_identical_and_perfect_inputs_give_zero(perceptual):
    data = inputs()
    label = data["label"]
    perfect = one_hot(label, NUM_CLASSES) * 50.0
    terms = XCTRSLoss(perceptual=perceptual).terms(data["ct"], data["ct"].clone(), perfect, perfect.clone(), label)
    assert terms["mae"].item() == 0.0 and terms["mv"].item() == 0.0
    assert terms["loss"].item() < 1e-3


def test_terms_detached_total_differentiable_and_reduction(perceptual):
    data = inputs(requires_grad=True)
    terms = XCTRSLoss(perceptual=perceptual, reduction="none").terms(**data)
    assert all(v.shape == (B,) for v in terms.values())
    assert terms["loss"].requires_grad
    assert not any(v.requires_grad for k, v in terms.items() if k != "loss")
    terms["loss"].sum().backward()
    assert all(data[k].grad is not None for k in ("ct_hat", "seg_hat_logits", "seg_gt_ct_logits"))


def test_weights_change_at_run_time():
    loss = XCTRSLoss(use_mv_perceptual=False)
    before = loss.terms(**inputs())
    loss.weights["rsc_div"] = 0.0
    loss.weights["seg"] = 0.5
    after = loss.terms(**inputs())
    assert "rsc_div" in after  # a zero weight still reports its term
    torch.testing.assert_close(after["loss"], before["loss"] - before["rsc_div"] - 0.5 * before["seg"])
    loss.weights["rsc"] = 1.0
    with pytest.raises(ValueError, match="exactly the keys"):
        loss.terms(**inputs())
    del loss.weights["rsc"]
    loss.weights["seg"] = -1.0
    with pytest.raises(ValueError, match="'seg'"):
        loss.terms(**inputs())


@pytest.mark.parametrize("grad_to_gt", [False, True])
def test_divergence_gradient_switch_changes_gt_seg_gradient(grad_to_gt):
    """With the RSC segmentation term weighted 0, S(ct) gets a non-zero gradient only when the switch is on."""
    data = inputs(requires_grad=True)
    loss = XCTRSLoss(use_mv_perceptual=False, weights={"rsc_seg": 0.0}, divergence_grad_to_gt_seg=grad_to_gt)
    loss(**data).backward()
    gt_grad = data["seg_gt_ct_logits"].grad
    assert (gt_grad is not None and gt_grad.abs().sum().item() > 0) == grad_to_gt
    assert data["seg_hat_logits"].grad.abs().sum() > 0 and data["ct_hat"].grad.abs().sum() > 0


ILL_CASES = [
    {"weights": {"rsc": 1.0}},
    {"weights": {"mae": -1.0}},
    {"weights": {"mv": float("nan")}},
    {"use_projection": True},
    {"divergence_target": "probabilities"},
    {"divergence_target": "hard", "divergence_grad_to_gt_seg": True},
    {"reduction": "batchmean"},
]


@pytest.mark.parametrize("kwargs", ILL_CASES)
def test_ill_arguments(kwargs):
    with pytest.raises(ValueError):
        XCTRSLoss(use_mv_perceptual=False, **kwargs)


def test_ill_inputs():
    data = inputs()
    with pytest.raises(ValueError, match="ct_hat and ct shapes differ"):
        XCTRSLoss(use_mv_perceptual=False)(
            data["ct_hat"][..., :8], data["ct"], data["seg_hat_logits"], data["seg_gt_ct_logits"], data["label"]
        )
