# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from monai.networks.utils import one_hot
from xctrs_monai.losses import RSCLoss, segmentation_dice_loss

SHAPE = (2, 1, 16, 16, 16)
NUM_CLASSES = 8


def labels() -> torch.Tensor:
    """Slabs of C1..C7 along Z over background, one label map per sample."""
    label = torch.zeros(SHAPE, dtype=torch.long)
    for k in range(1, NUM_CLASSES):
        label[:, :, 4:12, 4:12, 2 * k - 1 : 2 * k + 1] = k
    return label


def perfect_logits(label: torch.Tensor, scale: float = 50.0) -> torch.Tensor:
    return one_hot(label, num_classes=NUM_CLASSES) * scale


def corrupt(label: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Relabel the given fraction of voxels with a different class."""
    gen = torch.Generator().manual_seed(seed)
    flip = torch.rand(label.shape, generator=gen) < fraction
    return torch.where(flip, (label + 1) % NUM_CLASSES, label)


def test_perfect_segmentation_dice_is_zero():
    label = labels()
    assert segmentation_dice_loss()(perfect_logits(label), label).item() < 1e-4
    assert segmentation_dice_loss()(perfect_logits(corrupt(label, 0.3)), label).item() > 0.1


@pytest.mark.parametrize("target", ["soft", "hard"])
def test_rsc_zero_when_agreeing_and_grows_with_divergence(target):
    label = labels()
    loss = RSCLoss(divergence_target=target)
    gt_logits = perfect_logits(label)
    out = loss.terms(perfect_logits(label), gt_logits, label)
    assert out["loss"].item() < 1e-4 and out["rsc_seg"].item() < 1e-4 and out["rsc_div"].item() < 1e-4
    divergences = [
        loss.terms(perfect_logits(corrupt(label, f)), gt_logits, label)["rsc_div"].item() for f in (0.1, 0.3, 0.6)
    ]
    assert 1e-3 < divergences[0] < divergences[1] < divergences[2]
    # the GT-CT segmentation term only sees S(ct) vs the labels
    assert loss.terms(perfect_logits(corrupt(label, 0.3)), gt_logits, label)["rsc_seg"].item() < 1e-4


def test_soft_target_is_zero_for_equal_uncertain_maps():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, NUM_CLASSES, 8, 8, 8, generator=gen)
    assert RSCLoss(divergence_target="soft").divergence_term(logits, logits.clone()).max().item() < 1e-6
    assert RSCLoss(divergence_target="hard").divergence_term(logits, logits.clone()).min().item() > 0.1


def test_terms_and_reduction():
    label = labels()
    gen = torch.Generator().manual_seed(0)
    seg_hat, seg_gt = (torch.randn(2, NUM_CLASSES, 16, 16, 16, generator=gen) for _ in range(2))
    per_sample = RSCLoss(reduction="none").terms(seg_hat, seg_gt, label)
    assert all(v.shape == (2,) for v in per_sample.values())
    torch.testing.assert_close(per_sample["loss"], per_sample["rsc_seg"] + per_sample["rsc_div"])
    torch.testing.assert_close(RSCLoss()(seg_hat, seg_gt, label), per_sample["loss"].mean())
    assert not per_sample["rsc_seg"].requires_grad


@pytest.mark.parametrize("grad_to_gt, gt_gets_grad", [(False, False), (True, True)])
def test_divergence_gradient_switch(grad_to_gt, gt_gets_grad):
    gen = torch.Generator().manual_seed(0)
    seg_hat = torch.randn(1, NUM_CLASSES, 8, 8, 8, generator=gen, requires_grad=True)
    seg_gt = torch.randn(1, NUM_CLASSES, 8, 8, 8, generator=gen, requires_grad=True)
    RSCLoss(divergence_grad_to_gt_seg=grad_to_gt).divergence_term(seg_hat, seg_gt).sum().backward()
    assert seg_hat.grad is not None and seg_hat.grad.abs().sum() > 0
    assert (seg_gt.grad is not None) == gt_gets_grad
    if gt_gets_grad:
        assert seg_gt.grad.abs().sum() > 0


def test_divergence_gradient_reaches_reconstruction_not_gt_segmenter_branch():
    """ct_hat -> S -> seg_hat and ct -> S -> seg_gt: by default the divergence trains R (via ct_hat)."""
    torch.manual_seed(0)
    segmenter = torch.nn.Conv3d(1, NUM_CLASSES, 3, padding=1)
    ct_hat = torch.rand(1, 1, 8, 8, 8, requires_grad=True)
    ct = torch.rand(1, 1, 8, 8, 8, requires_grad=True)
    RSCLoss().divergence_term(segmenter(ct_hat), segmenter(ct)).sum().backward()
    assert ct_hat.grad is not None and ct_hat.grad.abs().sum() > 0
    assert ct.grad is None


ILL_CASES = [
    {"divergence_target": "argmax"},
    {"divergence_target": "hard", "divergence_grad_to_gt_seg": True},
    {"reduction": "max"},
]


@pytest.mark.parametrize("kwargs", ILL_CASES)
def test_ill_arguments(kwargs):
    with pytest.raises(ValueError):
        RSCLoss(**kwargs)


def test_ill_inputs():
    loss = RSCLoss()
    label = labels()
    with pytest.raises(ValueError, match="C >= 2"):
        loss(torch.rand(2, 1, 16, 16, 16), torch.rand(2, 1, 16, 16, 16), label)
    with pytest.raises(ValueError, match="shapes differ"):
        loss.divergence_term(torch.rand(2, 8, 16, 16, 16), torch.rand(2, 8, 16, 16, 8))
