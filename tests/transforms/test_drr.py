# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Tests of the biplanar DRR projector: analytic line integrals, marker geometry, gradients, bad input."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch

from monai.data import MetaTensor
from xctrs_monai.transforms import BiplanarDRR, BiplanarDRRd, BiplanarProjector, project_biplanar, spacing_from_affine

MU_WATER = 0.02


def _mu_to_hu(mu: np.ndarray) -> np.ndarray:
    return 1000.0 * (mu / MU_WATER - 1.0)


def _ellipsoid_phantom(shape, spacing, centre, radii, mu, supersample=2) -> np.ndarray:
    """mu of a uniform ellipsoid (mm, relative to the volume centre) with partial-volume voxels."""
    axes = []
    for n, s in zip(shape, spacing):
        fine = (np.arange(n * supersample) + 0.5) / supersample - 0.5  # sub-voxel centres in voxel units
        axes.append((fine - (n - 1) / 2.0) * s)
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    inside = ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2
    inside = (inside <= 1.0).astype(np.float64)
    k = supersample
    fraction = inside.reshape(shape[0], k, shape[1], k, shape[2], k).mean(axis=(1, 3, 5))
    return fraction * mu


def _analytic_image(view, geometry, sdd, sad, detector_shape, pixel_spacing, centre, radii, mu) -> np.ndarray:
    """Exact line integral of a uniform ellipsoid for every detector pixel (chord length x mu)."""
    n_u, n_v = detector_shape
    du = (np.arange(n_u) - (n_u - 1) / 2.0) * pixel_spacing[0]
    dv = (np.arange(n_v) - (n_v - 1) / 2.0) * pixel_spacing[1]
    pu, pv = np.meshgrid(du, dv, indexing="ij")
    depth = np.ones_like(pu)
    if geometry == "cone":
        start = np.zeros(pu.shape + (3,))
        start[..., 0 if view == "la" else 1] = sad
        end_depth, end_u = (sad - sdd) * depth, pu
    else:
        end_depth, end_u = -1e4 * depth, pu
    if view == "ap":  # beam along -Y, u along X, v along Z
        end = np.stack([end_u, end_depth, pv], axis=-1)
        if geometry == "parallel":
            start = np.stack([pu, 1e4 * depth, pv], axis=-1)
    else:  # beam along -X, u along Y, v along Z
        end = np.stack([end_depth, end_u, pv], axis=-1)
        if geometry == "parallel":
            start = np.stack([1e4 * depth, pu, pv], axis=-1)
    direction = end - start
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    radii, centre = np.asarray(radii, dtype=float), np.asarray(centre, dtype=float)
    o, d = (start - centre) / radii, direction / radii
    a, b, c = (d * d).sum(-1), 2.0 * (o * d).sum(-1), (o * o).sum(-1) - 1.0
    disc = b * b - 4.0 * a * c
    return mu * np.where(disc > 0, np.sqrt(np.clip(disc, 0, None)) / a, 0.0)


def _median_relative_error(image: torch.Tensor, reference: np.ndarray) -> float:
    mask = reference > 0.2 * reference.max()
    got = image.detach().cpu().double().numpy().reshape(reference.shape)
    return float(np.median(np.abs(got[mask] - reference[mask]) / reference[mask]))


# (geometry, shape, spacing, centre mm, radii mm)
TEST_CASE_SPHERE_CONE = ["cone", (64, 64, 64), (1.0, 1.0, 1.0), (1.5, -2.0, 3.0), (24.0, 24.0, 24.0)]
TEST_CASE_ELLIPSOID_CONE = ["cone", (64, 64, 64), (1.0, 1.0, 1.0), (-3.0, 2.5, 1.0), (26.0, 18.0, 28.0)]
TEST_CASE_ELLIPSOID_PARALLEL = ["parallel", (64, 64, 64), (1.0, 1.0, 1.0), (2.0, 1.0, -2.5), (20.0, 27.0, 25.0)]
TEST_CASE_SPHERE_PARALLEL = ["parallel", (48, 48, 48), (1.25, 1.25, 1.25), (0.0, 3.0, 0.0), (24.0, 24.0, 24.0)]
# anisotropic voxels: the same 64 mm field of view sampled 0.8 x 1.25 x 1.0 mm
TEST_CASE_ANISO_CONE = ["cone", (80, 51, 64), (0.8, 1.25, 1.0), (2.0, -1.5, 1.0), (25.0, 22.0, 26.0)]
TEST_CASE_ANISO_PARALLEL = ["parallel", (80, 51, 64), (0.8, 1.25, 1.0), (-1.0, 2.0, 0.5), (25.0, 25.0, 25.0)]
ACCURACY_CASES = [
    TEST_CASE_SPHERE_CONE,
    TEST_CASE_ELLIPSOID_CONE,
    TEST_CASE_ELLIPSOID_PARALLEL,
    TEST_CASE_SPHERE_PARALLEL,
    TEST_CASE_ANISO_CONE,
    TEST_CASE_ANISO_PARALLEL,
]


@pytest.mark.parametrize("geometry, shape, spacing, centre, radii", ACCURACY_CASES)
def test_analytic_line_integrals(geometry, shape, spacing, centre, radii):
    mu = 0.03
    phantom = _ellipsoid_phantom(shape, spacing, centre, radii, mu)
    affine = np.diag(list(spacing) + [1.0])
    ct = MetaTensor(torch.as_tensor(_mu_to_hu(phantom), dtype=torch.float32)[None], affine=torch.as_tensor(affine))
    ap, la = BiplanarDRR(geometry=geometry)(ct)
    assert ap.shape == (1, shape[0], shape[2]) and la.shape == (1, shape[1], shape[2])
    sdd_sad = {"ap": (1000.0, 900.0), "la": (1500.0, 1350.0)}
    for view, image in (("ap", ap), ("la", la)):
        sdd, sad = sdd_sad[view]
        reference = _analytic_image(
            view, geometry, sdd, sad, image.shape[1:], image.meta["pixel_spacing"], centre, radii, mu
        )
        error = _median_relative_error(image, reference)
        assert error <= 0.01, f"{view}: median relative error {error:.4f}"


def _centroid(image: torch.Tensor) -> np.ndarray:
    img = image.detach().double().reshape(image.shape[-2:])
    grid = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in img.shape), indexing="ij")
    return np.array([float((g * img).sum() / img.sum()) for g in grid])


# marker voxel index, strong magnification so that depth matters: AP sad 60 / sdd 120, LA sad 70 / sdd 150
MARKER_CASES = [(25, 26, 8), (6, 5, 24), (16, 16, 16), (10, 24, 27)]


@pytest.mark.parametrize("marker", MARKER_CASES)
def test_marker_lands_where_cone_geometry_predicts(marker):
    shape, spacing = (32, 32, 32), (1.0, 1.0, 1.0)
    geometry = {"ap_sdd": 120.0, "ap_sad": 60.0, "la_sdd": 150.0, "la_sad": 70.0}
    volume = torch.zeros((1, 1) + shape, dtype=torch.float64)
    volume[(0, 0) + marker] = 1.0
    ap, la = project_biplanar(volume, spacing, units="mu", **geometry)
    x, y, z = ((np.array(marker) - (np.array(shape) - 1) / 2.0) * spacing).tolist()
    # AP: source at +Y (anterior), magnification sdd / (sad - y); LA: source at +X (patient's right)
    m_ap = geometry["ap_sdd"] / (geometry["ap_sad"] - y)
    m_la = geometry["la_sdd"] / (geometry["la_sad"] - x)
    pix_ap = geometry["ap_sdd"] / geometry["ap_sad"]  # default pixel: one voxel at the isocenter
    pix_la = geometry["la_sdd"] / geometry["la_sad"]
    expected_ap = np.array([x * m_ap / pix_ap + 15.5, z * m_ap / pix_ap + 15.5])
    expected_la = np.array([y * m_la / pix_la + 15.5, z * m_la / pix_la + 15.5])
    np.testing.assert_allclose(_centroid(ap), expected_ap, atol=0.1)
    np.testing.assert_allclose(_centroid(la), expected_la, atol=0.1)
    assert tuple(torch.nonzero(ap[0, 0] == ap.max())[0].tolist()) == tuple(np.round(expected_ap).astype(int))
    assert tuple(torch.nonzero(la[0, 0] == la.max())[0].tolist()) == tuple(np.round(expected_la).astype(int))


def test_parallel_marker_is_exact():
    volume = torch.zeros(1, 1, 9, 7, 11, dtype=torch.float64)
    volume[0, 0, 6, 2, 8] = 0.5
    ap, la = project_biplanar(volume, (1.0, 2.0, 1.5), geometry="parallel", units="mu")
    assert ap.shape == (1, 1, 9, 11) and la.shape == (1, 1, 7, 11)
    assert torch.nonzero(ap[0, 0]).tolist() == [[6, 8]] and float(ap[0, 0, 6, 8]) == pytest.approx(0.5 * 2.0)
    assert torch.nonzero(la[0, 0]).tolist() == [[2, 8]] and float(la[0, 0, 2, 8]) == pytest.approx(0.5 * 1.0)


@pytest.fixture
def one_thread():
    """Tiny sparse products: threading only adds overhead (and stalls badly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_gradcheck_double(one_thread):
    torch.manual_seed(0)
    # HU in [-1500, 1500]: some voxels below -1000 HU, where mu is clipped and the gradient is 0
    volume = (torch.rand(2, 1, 6, 5, 7, dtype=torch.float64) * 3000.0 - 1500.0).requires_grad_(True)
    geometry = {"ap_sdd": 40.0, "ap_sad": 20.0, "la_sdd": 30.0, "la_sad": 15.0, "detector_shape": ((7, 6), (5, 8))}

    def project(v):
        return project_biplanar(v, (1.0, 1.2, 0.9), **geometry)

    assert torch.autograd.gradcheck(project, (volume,), eps=1e-3, atol=1e-6)
    for batch in (1, 3):
        mu = (torch.rand(batch, 1, 6, 5, 7, dtype=torch.float64) * 0.03).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda v: project_biplanar(v, (1.0, 1.0, 1.0), units="mu"), (mu,))
    # one view only in the loss
    ap_only = volume.detach()[:1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: project(v)[0], (ap_only,), eps=1e-3, atol=1e-6)


def test_batch_channels_and_options():
    torch.manual_seed(1)
    projector = BiplanarProjector((12, 10, 14), (1.0, 1.5, 0.8), detector_shape=((16, 9), (11, 20)))
    volume = torch.rand(3, 2, 12, 10, 14) * 2000.0 - 1000.0
    ap, la = projector(volume)
    assert ap.shape == (3, 2, 16, 9) and la.shape == (3, 2, 11, 20)
    single_ap, single_la = projector(volume[1:2, 1:2])
    torch.testing.assert_close(single_ap[0, 0], ap[1, 1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(single_la[0, 0], la[1, 1], rtol=1e-5, atol=1e-6)
    # HU -> mu with clipping at -1000 HU, same as projecting mu directly
    mu_ap, mu_la = BiplanarProjector((12, 10, 14), (1.0, 1.5, 0.8), detector_shape=((16, 9), (11, 20)), units="mu")(
        torch.clamp(MU_WATER * (1.0 + (volume - 500.0) / 1000.0), min=0.0)
    )
    hu_ap, hu_la = projector(volume - 500.0)
    torch.testing.assert_close(hu_ap, mu_ap, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(hu_la, mu_la, rtol=1e-4, atol=1e-5)
    intensity_ap, _ = BiplanarProjector((12, 10, 14), (1.0, 1.5, 0.8), detector_shape=((16, 9), (11, 20)),
                                        output="intensity")(volume)
    torch.testing.assert_close(intensity_ap, torch.exp(-ap))
    assert projector.ap_pixel_spacing == pytest.approx((1000.0 / 900.0, 0.8 * 1000.0 / 900.0))


def test_projector_copies_and_pickles():
    projector = BiplanarProjector((6, 5, 7), (1.0, 1.0, 1.0))
    volume = torch.rand(1, 1, 6, 5, 7) * 1000.0
    expected = projector(volume)
    for clone in (copy.deepcopy(projector), pickle.loads(pickle.dumps(projector))):
        for a, b in zip(clone(volume), expected):
            torch.testing.assert_close(a, b)


def test_transform_metadata_and_dictionary():
    ct = MetaTensor(torch.full((1, 8, 10, 12), -1000.0), affine=torch.diag(torch.tensor([1.0, 2.0, 1.5, 1.0])))
    ct[0, 2:6, 3:7, 4:9] = 200.0
    ct.meta["filename_or_obj"] = "case_000.nii.gz"
    data = BiplanarDRRd(keys="image", geometry="parallel")({"image": ct, "label": 1})
    ap, la = data["xray_ap"], data["xray_la"]
    assert isinstance(ap, MetaTensor) and ap.shape == (1, 8, 12) and la.shape == (1, 10, 12)
    assert ap.meta["view"] == "ap" and la.meta["view"] == "la" and ap.meta["filename_or_obj"] == "case_000.nii.gz"
    assert la.meta["pixel_spacing"] == pytest.approx((2.0, 1.5))
    np.testing.assert_allclose(np.asarray(la.affine)[:2, :2], np.diag([2.0, 1.5]))
    assert float(ap.max()) == pytest.approx(MU_WATER * 1.2 * 4 * 2.0, rel=1e-5)  # 4 voxels of 2 mm along Y
    plain_ap, _ = BiplanarDRR(geometry="parallel")(ct.as_tensor(), spacing=(1.0, 2.0, 1.5))
    assert not isinstance(plain_ap, MetaTensor)
    torch.testing.assert_close(plain_ap, ap.as_tensor())
    # an LPS-world affine of a RAS-ordered array is accepted
    lps = MetaTensor(ct.as_tensor(), affine=torch.diag(torch.tensor([-1.0, -2.0, 1.5, 1.0])), meta={"space": "LPS"})
    assert spacing_from_affine(lps.affine, "LPS") == (1.0, 2.0, 1.5)
    torch.testing.assert_close(BiplanarDRR(geometry="parallel")(lps)[0].as_tensor(), ap.as_tensor())


def _oblique_affine(degrees: float) -> torch.Tensor:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return torch.tensor([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)


ILL_CALL_CASES = [
    [torch.zeros(1, 16, 16), None, "channel-first 3D volume"],  # a 2D image
    [torch.full((1, 4, 4, 4), float("nan")), (1.0, 1.0, 1.0), "non-finite"],
    [torch.zeros(1, 4, 4, 4), (0.0, 1.0, 1.0), "spacing"],
    [torch.zeros(1, 4, 4, 4), (1.0, -1.0, 1.0), "spacing"],
    [torch.zeros(1, 4, 4, 4), None, "spacing"],  # a plain tensor without spacing
    [MetaTensor(torch.zeros(1, 4, 4, 4), affine=torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0]))), None, "RAS"],
    [MetaTensor(torch.zeros(1, 4, 4, 4), affine=_oblique_affine(10.0)), None, "Orientationd"],
]


@pytest.mark.parametrize("img, spacing, message", ILL_CALL_CASES)
def test_ill_input(img, spacing, message):
    with pytest.raises(ValueError, match=message):
        BiplanarDRR()(img, spacing=spacing)


ILL_ARG_CASES = [
    [{"ap_sad": 1000.0}, "ap_sad must be smaller"],
    [{"la_sdd": 1000.0, "la_sad": 1200.0}, "la_sad must be smaller"],
    [{"ap_sdd": -5.0}, "ap_sdd"],
    [{"geometry": "fan"}, "geometry"],
    [{"output": "log"}, "output"],
    [{"mu_water": 0.0}, "mu_water"],
    [{"detector_shape": (0, 4)}, "detector_shape"],
    [{"detector_spacing": (1.0, 2.0, 3.0)}, "detector_spacing"],
]


@pytest.mark.parametrize("kwargs, message", ILL_ARG_CASES)
def test_ill_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BiplanarDRR(**kwargs)


def test_source_inside_volume():
    with pytest.raises(ValueError, match="inside the volume"):
        BiplanarProjector((16, 16, 16), (10.0, 10.0, 10.0), ap_sdd=100.0, ap_sad=60.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(2)
    volume = torch.rand(2, 1, 20, 18, 22) * 2000.0 - 1000.0
    cpu = project_biplanar(volume, (1.0, 1.0, 1.5))
    leaf = volume.cuda().requires_grad_(True)
    gpu = project_biplanar(leaf, (1.0, 1.0, 1.5))
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-4)
    (gpu[0].sum() + gpu[1].sum()).backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
