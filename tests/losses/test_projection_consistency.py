# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from xctrs_monai.losses import ProjectionConsistencyLoss, unit_to_hu


def sum_projector(volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Parallel-beam stand-in for the DRR functional: AP integrates along Y (B1XZ), LA along X (B1YZ)."""
    return volume.sum(dim=3), volume.sum(dim=2)


class ModuleProjector(torch.nn.Module):
    def forward(self, volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return sum_projector(volume)


def volumes() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(2, 1, 8, 8, 8, generator=gen), torch.rand(2, 1, 8, 8, 8, generator=gen)


def manual(ct_hat: torch.Tensor, ct: torch.Tensor, scale: float) -> torch.Tensor:
    d = (ct_hat - ct) * scale
    return (d.sum(3).abs().flatten(1).mean(1) + d.sum(2).abs().flatten(1).mean(1)).mean()


def test_unit_to_hu():
    torch.testing.assert_close(unit_to_hu(torch.tensor([0.0, 1.0 / 3.0, 1.0])), torch.tensor([-1000.0, 0.0, 2000.0]))


@pytest.mark.parametrize(
    "to_hu, scale",
    [(True, 3000.0), (False, 1.0), (lambda v: 2.0 * v, 2.0)],
)
def test_value_identity_and_gradient(to_hu, scale):
    ct_hat, ct = volumes()
    loss = ProjectionConsistencyLoss(sum_projector, to_hu=to_hu)
    assert loss(ct, ct.clone()).item() == 0.0
    torch.testing.assert_close(loss(ct_hat, ct), manual(ct_hat, ct, scale))
    ct_hat.requires_grad_(True)
    loss(ct_hat, ct).backward()
    assert ct_hat.grad is not None and ct_hat.grad.abs().sum() > 0


def test_module_projector_and_reduction():
    ct_hat, ct = volumes()
    loss = ProjectionConsistencyLoss(ModuleProjector(), to_hu=False, reduction="none")
    assert "projector" in dict(loss.named_children())
    assert loss(ct_hat, ct).shape == (2,)
    assert len(loss.view_losses(ct_hat, ct)) == 2


ILL_CASES = [
    {"projector": "drr"},
    {"projector": sum_projector, "to_hu": "yes"},
    {"projector": sum_projector, "hu_window": (2000.0, -1000.0)},
    {"projector": sum_projector, "hu_window": (0.0,)},
    {"projector": sum_projector, "reduction": "avg"},
]


@pytest.mark.parametrize("kwargs", ILL_CASES)
def test_ill_arguments(kwargs):
    with pytest.raises(ValueError):
        ProjectionConsistencyLoss(**kwargs)


def test_ill_projector_output_and_shapes():
    ct_hat, ct = volumes()
    with pytest.raises(ValueError, match="sequence of views"):
        ProjectionConsistencyLoss(lambda v: v.sum(dim=3))(ct_hat, ct)
    with pytest.raises(ValueError, match="shapes differ"):
        ProjectionConsistencyLoss(sum_projector)(ct_hat, ct[..., :4])


def test_with_the_projector_layer():
    """The loss over the real projector: the projector becomes a submodule and sees the volumes in HU."""
    from xctrs_monai.networks.layers import BiplanarProjector

    ct_hat, ct = volumes()
    projector = BiplanarProjector((8, 8, 8), (2.0, 2.0, 2.0))
    loss = ProjectionConsistencyLoss(projector, reduction="none")
    assert loss.projector is projector
    views = zip(projector(unit_to_hu(ct_hat)), projector(unit_to_hu(ct)))
    expected = sum((p - t).abs().flatten(1).mean(1) for p, t in views)
    torch.testing.assert_close(loss(ct_hat, ct), expected)
    ct_hat.requires_grad_(True)
    loss(ct_hat, ct).sum().backward()
    assert ct_hat.grad is not None and ct_hat.grad.abs().sum() > 0
