# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from xctrs_monai.losses import PLANES, MultiViewPerceptualLoss, ReconstructionLoss

pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features has no weights_path")

SIZE = 16


def volumes(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ct = torch.rand(batch, 1, SIZE, SIZE, SIZE, generator=gen)
    ct_hat = (ct + 0.2 * torch.randn(ct.shape, generator=gen)).clamp(0, 1)
    return ct_hat, ct


TEST_CASES = [
    {},
    {"planes": ("axial",)},
    {"planes": ("coronal", "sagittal"), "feature_layer": ("relu1_2", "relu2_2")},
    {"num_slices": 4},
    {"num_slices": 4, "sampling": "random"},
    {"slice_stride": 3},
    {"slice_stride": 3, "sampling": "random"},
    {"num_slices": 40},
    {"slice_stride": 40, "sampling": "random"},
]


@pytest.mark.parametrize("kwargs", TEST_CASES)
def test_identical_zero_different_positive(kwargs):
    loss = MultiViewPerceptualLoss(**kwargs)
    ct_hat, ct = volumes()
    assert loss(ct, ct.clone()).item() == 0.0
    value = loss(ct_hat, ct)
    assert value.ndim == 0 and value.item() > 0


def test_reduction_and_gradient():
    ct_hat, ct = volumes(batch=3)
    per_sample = MultiViewPerceptualLoss(reduction="none")(ct_hat, ct)
    assert per_sample.shape == (3,)
    torch.testing.assert_close(MultiViewPerceptualLoss(reduction="mean")(ct_hat, ct), per_sample.mean())
    torch.testing.assert_close(MultiViewPerceptualLoss(reduction="sum")(ct_hat, ct), per_sample.sum())
    ct_hat.requires_grad_(True)
    loss = MultiViewPerceptualLoss()
    loss(ct_hat, ct).backward()
    assert ct_hat.grad is not None and ct_hat.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_normalisation_is_mean_over_slices_and_feature_elements():
    """Axial term == mean over Z slices and feature elements of the squared VGG feature difference."""
    ct_hat, ct = volumes(batch=2)
    loss = MultiViewPerceptualLoss(planes=("axial",), feature_layer="relu1_2", reduction="none")
    slices_hat = ct_hat.permute(0, 4, 1, 2, 3).reshape(-1, 1, SIZE, SIZE)  # (B*Z)1XY
    slices = ct.permute(0, 4, 1, 2, 3).reshape(-1, 1, SIZE, SIZE)
    diff = (loss.vgg(slices_hat)[0] - loss.vgg(slices)[0]) ** 2
    torch.testing.assert_close(loss(ct_hat, ct), diff.reshape(2, -1).mean(1))


def test_value_with_known_vgg_weights(channel_picking_vgg):
    """With conv1_1 copying input channel c to output channel c, a slice's feature difference is the pixel
    difference divided by ImageNet's std of channel c (the means cancel): the axial term is
    mean((a - b)^2) * (1/0.229^2 + 1/0.224^2 + 1/0.225^2) / 64 channels = 0.9179997 * mean((a - b)^2),
    computed by hand, not through the loss's VGG (without the normalisation the factor would be 3/64)."""
    ct_hat, ct = volumes(batch=2)
    loss = MultiViewPerceptualLoss(
        planes=("axial",), feature_layer="conv1_1", weights_path=channel_picking_vgg, reduction="none"
    )
    expected = 0.9179997247664631 * ((ct_hat - ct) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(loss(ct_hat, ct), expected)  # float32 means of ~4000 terms: default tolerance


def test_layers_add_up():
    ct_hat, ct = volumes()
    both = MultiViewPerceptualLoss(feature_layer=("relu1_2", "relu2_2"))(ct_hat, ct)
    single = MultiViewPerceptualLoss(feature_layer="relu1_2")(ct_hat, ct) + MultiViewPerceptualLoss()(ct_hat, ct)
    torch.testing.assert_close(both, single)


def test_plane_axes_follow_ras_layout():
    """Perturbing one axial slice (z = 3) is unseen by the axial term when only slice z = 8 is used,
    but seen by the coronal and sagittal terms, whose slices all cross z = 3."""
    assert PLANES == {"axial": 4, "coronal": 3, "sagittal": 2}
    _, ct = volumes(batch=1)
    ct_hat = ct.clone()
    ct_hat[..., 3] = 1.0 - ct_hat[..., 3]
    loss = MultiViewPerceptualLoss(num_slices=1, reduction="none")  # uniform: slice index 8 of 16
    terms = loss.plane_losses(ct_hat, ct)
    assert terms["axial"].item() == 0.0
    assert terms["coronal"].item() > 0 and terms["sagittal"].item() > 0
    ct_hat = ct.clone()
    ct_hat[..., 8] = 1.0 - ct_hat[..., 8]
    assert loss.plane_losses(ct_hat, ct)["axial"].item() > 0


def test_random_sampling_is_seedable():
    ct_hat, ct = volumes()
    loss = MultiViewPerceptualLoss(num_slices=3, sampling="random")
    loss.set_random_state(7)
    first = loss(ct_hat, ct)
    idx_first = {k: v.copy() for k, v in loss._indices.items()}
    loss.set_random_state(7)
    torch.testing.assert_close(loss(ct_hat, ct), first)
    for plane, idx in idx_first.items():
        assert len(set(idx.tolist())) == 3 and list(idx) == sorted(idx)
        assert (loss._indices[plane] == idx).all()


def test_reconstruction_loss_is_mae_plus_mv():
    ct_hat, ct = volumes()
    perceptual = MultiViewPerceptualLoss(num_slices=4)
    expected = (ct_hat - ct).abs().mean() + perceptual(ct_hat, ct)
    torch.testing.assert_close(ReconstructionLoss(perceptual=perceptual)(ct_hat, ct), expected)
    assert ReconstructionLoss(perceptual=perceptual)(ct, ct.clone()).item() == 0.0
    mae_only = ReconstructionLoss(perceptual_weight=0.0)
    assert mae_only.perceptual is None
    torch.testing.assert_close(mae_only(ct_hat, ct), (ct_hat - ct).abs().mean())


ILL_CASES = [
    {"planes": ("axial", "transverse")},
    {"planes": ()},
    {"planes": ("axial", "axial")},
    {"slice_stride": 0},
    {"num_slices": 0},
    {"num_slices": 4, "slice_stride": 2},
    {"sampling": "every"},
    {"reduction": "median"},
    {"feature_layer": "relu6_1"},
]


@pytest.mark.parametrize("kwargs", ILL_CASES)
def test_ill_arguments(kwargs):
    with pytest.raises(ValueError):
        MultiViewPerceptualLoss(**kwargs)


def test_ill_inputs():
    loss = MultiViewPerceptualLoss()
    with pytest.raises(ValueError, match="B1XYZ"):
        loss(torch.rand(1, 1, 16, 16, 16), torch.rand(1, 1, 16, 16, 8))
    with pytest.raises(ValueError, match="B1XYZ"):
        loss(torch.rand(1, 2, 16, 16, 16), torch.rand(1, 2, 16, 16, 16))
    with pytest.raises(ValueError):
        ReconstructionLoss(mae_weight=-1.0, perceptual_weight=0.0)
