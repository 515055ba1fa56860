# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The sampled anatomy of one phantom: vertebra sizes, discs, curvature, pose, neck and shoulders.

Everything is in true millimetres and degrees of adult necks. Population means and between-person
spreads come from published cervical morphometry where we found it; the rest is marked as our
choice. Sources (sizes are of both sexes pooled unless said otherwise):

- Vertebral body width (C3-C7): 23.0 +- 2.4 mm (women) and 24.6 +- 2.4 mm (men) on CT of 100 adults
  ("Morphologic evaluation of cervical spine anatomy with computed tomography", J Spinal Disord Tech
  2004;17(2):102-107), rising from C3 to C6 in dry bones (22.1 +- 1.5 to 24.7 +- 1.8 mm, Galloway
  collection); men's bodies 2.1-2.2 mm wider than women's (Nell et al. 2019, PLoS ONE 14:e0222682,
  MRI of 2,453 adults). Ours: 21.5 (C3) to 24.5 mm (C7).
- Vertebral body depth: about 17-18 mm (men) and 15-16 mm (women) mid-sagittal (same CT study, 2004);
  body height 11.1 +- 1.4 mm posterior, 10.0 +- 1.4 mm anterior (dry typical cervical vertebrae,
  J Hum Anat); on lateral radiographs of 61 young adults height and depth are largest at C7, height
  smallest at C5 and depth at C3 ("Mid-sagittal dimensions of cervical vertebral bodies", Am J Phys
  Anthropol), and depth exceeds height at C3-C7 (Gilad & Nissan 1985, J Anat 143:115-120, 157 men).
  Ours: depth 15.5-16.8 mm, height 11.0-12.4 mm, with those orders.
- Sex: a person is a man or a woman with equal odds; bone sizes of women are 0.91 of men's (the
  ratio of the CT means above); within a sex the size factor has SD 6 % (about 2.4 mm of 24 mm, as
  the CT study's SD), each of width, depth and height another 4 %, each level 2 % (our choice).
- Spinal canal: transverse (interpedicular) 21.1 +- 1.5 mm (Shin et al. 2024, Surg Neurol Int 15:196,
  CT of 1,000 adults 18-35 years); sagittal 12.8-14.4 +- 1.5-1.6 mm (Parihar, CT of 100 adults, J Neurosci
  Rural Pract); similar in men and women (Nell et al. 2019), so the canal has its own factor (SD 7 %).
- C2 (axis): total height (dens tip to inferior endplate) 38.1 mm, dens height 15.8 mm (Yousuf et al.,
  Int J Res Med Sci); body depth 14.8 +- 1.7 mm and dens height 14.9 +- 1.5 mm (Gosavi & Swamy 2012);
  body width 15.8-16.2 mm, anterior height 18.7 +- 2.2 mm (52 dry axes, core.ac.uk/works/303973137);
  canal 21.6 by 14.4 mm at C2 (Parihar, above). Ours: body 16.5 x 15 x 19 mm, total height about 37 mm.
- C1 (atlas): width 71.2 mm across the transverse processes, canal 28.2 mm (AP) by 26.6 mm
  (transverse) (Patel & Gupta, 100 dry atlases, Int J Res Med Sci).
- Discs (mid height): 4.1 +- 1.2 mm on CT (Shin et al. 2024), 6.0 +- 0.9 mm (C4-5) to 6.4 +- 0.7 mm
  (C6-7) on MRI (Koken et al. 2014, J Turk Spinal Surg 25(3):189-192). Ours: 5.0 +- 0.9 mm per person,
  +- 0.4 mm per level, clipped to 3-7 mm.
- Lordosis (C2-C7 Cobb angle): 12.7 deg mean (Guo et al. 2018, J Orthop Surg Res 13:147, meta-analysis
  of 15,364 asymptomatic adults, 64 % lordotic); SD about 12 deg (9.1 +- 12.1 deg for the summed
  C2-C3..C6-C7 disc angles in Tang et al. 2021, Eur Spine J 30:2427-2433; -7.7 +- 12.1 deg in
  adolescents, Zhu et al. 2022, BMC Musculoskelet Disord 23:840). Ours: N(12.7, 12) deg clipped to
  [-15, 40], so straight and mildly kyphotic necks occur (for comparison, the total cervical
  lordosis in stance is -40.0 +- 9.7 deg in Hardacker et al. 1997, Spine 22(13):1472-1480).
- Head on the neck (C0-C2 angle): 15.2 +- 6.7 deg (Tang et al. 2021): the head's flexion relative to
  C2 varies with SD 6.7 deg around the shape's neutral pose.
- Neck circumference: 35.5 cm (men) and 31.5 cm (women) in lean young adults (Hingorjo et al. 2012,
  J Pak Med Assoc 62(1):39-43); 37 / 34 cm mark overweight and 39.5 / 36.5 cm obesity (Ben-Noun et al.
  2001, Obes Res 9:470-477). Ours (a choice in that range): N(38, 3) cm for men, N(33.5, 2.5) cm for
  women, clipped to 29-46 cm; subcutaneous fat 3-14 mm, thicker in larger necks (choice).
- Our choices without a source: the position of the column in the field of view (its C1..C7
  bounding box centre uniform within +-12 mm left-right, +-15 mm antero-posterior and +-20 mm
  cranio-caudal, kept inside the field of view), the inclination of the C2-C7 column in the
  scanner (N(5, 7) deg, leaning anterior; the C2-C7 sagittal vertical axis of 18.6 +- 7.9 mm in
  Tang et al. 2021 is of that order), a lateral tilt of the neck (SD 3 deg) and of each segment (SD 1 deg), an axial
  rotation of the neck (SD 5 deg), of the atlas on the axis (SD 4 deg) and of each vertebra (SD 1.5
  deg), shoulder height (clavicles, lung apices and the thoracic inlet SD 8 mm relative to T1), the
  head size (SD 5 %), T1 and T2 sizes, process lengths, airway size (+-15 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xctrs_monai.data.phantom.vertebrae import Atlas, Axis, Subaxial

__all__ = ["NeckAnatomy", "sample_anatomy"]

# population means (mm) of C3, C4, C5, C6, C7, T1, T2 (T1 and T2: our choice)
_BODY_WIDTH = (21.5, 22.2, 23.0, 24.0, 24.5, 27.0, 27.0)
_BODY_DEPTH = (15.5, 15.8, 16.0, 16.4, 16.8, 17.0, 18.5)
_BODY_HEIGHT = (11.5, 11.2, 11.0, 11.3, 12.4, 14.5, 16.5)
_CANAL_WIDTH = (21.0, 20.6, 21.0, 21.4, 21.2, 19.5, 17.5)
_CANAL_DEPTH = (13.8, 13.0, 13.2, 13.4, 13.6, 14.0, 14.0)
_SPINE_LEN = (10.0, 10.5, 11.5, 13.5, 21.0, 23.0, 24.0)
_TP_LEN = (10.5, 11.1, 11.8, 12.4, 13.0, 16.0, 14.0)
_ANTERIOR_BULGE = 1.8  # mm that the body's anterior ellipsoid adds to the box depth (``Subaxial.sdf``)


@dataclass(frozen=True)
class NeckAnatomy:
    """The sampled anatomy of one phantom (mm, degrees; see the module docstring for the ranges).

    Args:
        male: sex of the person (sizes, neck girth).
        size: overall bone size factor (sex and person).
        vertebrae: shapes of C1, C2, C3..C7, T1, T2 (index ``level - 1``).
        discs: mid heights of the discs C2/C3, C3/C4, ..., C7/T1, T1/T2.
        lordosis: C2-C7 Cobb angle, positive = lordotic.
        lean: inclination of the C2-C7 column from the scanner's superior axis, positive = the
            column leans anterior going up.
        coronal: lateral angle of each of the 7 links T2->T1 .. C3->C2.
        lateral_tilt: lateral tilt of the whole neck about the antero-posterior axis through T1.
        neck_rotation: axial rotation of the whole neck about the superior axis through T1.
        axial: axial rotation of each vertebra C1..T2 relative to its neighbours' mean axis.
        atlas_rotation: axial rotation of C1 (and the head) on C2.
        atlas_flexion: flexion of C1 on C2. head_flexion: flexion of the head on C1.
        head_scale: head size factor.
        position: ``(u_x, u_y, u_z)`` in ``[-1, 1]``: where the column lies in its room in the field of view.
        neck_circumference: mm. neck_aspect: neck width / depth. neck_offset: antero-posterior offset (mm)
            of the neck centre from the vertebral bodies. fat: subcutaneous fat thickness (mm).
        shoulder_drop: how far (mm) the clavicles, lung apices and thoracic inlet lie below their mean place.
        airway_scale: ``(x, y)`` size factors of the pharynx, larynx and trachea.
    """

    male: bool
    size: float
    vertebrae: tuple
    discs: tuple[float, ...]
    lordosis: float
    lean: float
    coronal: tuple[float, ...]
    lateral_tilt: float
    neck_rotation: float
    axial: tuple[float, ...]
    atlas_rotation: float
    atlas_flexion: float
    head_flexion: float
    head_scale: float
    position: tuple[float, float, float]
    neck_circumference: float
    neck_aspect: float
    neck_offset: float
    fat: float
    shoulder_drop: float
    airway_scale: tuple[float, float]

    @property
    def neck_semi_axes(self) -> tuple[float, float]:
        """Half width and half depth (mm) of the elliptic neck with ``neck_circumference`` (Ramanujan's perimeter)."""
        # perimeter of the ellipse (q b, b): pi (q + 1) b (1 + 3h / (10 + sqrt(4 - 3h))), h = ((q - 1) / (q + 1))^2
        q = self.neck_aspect
        h = ((q - 1.0) / (q + 1.0)) ** 2
        b = self.neck_circumference / (np.pi * (1.0 + q) * (1.0 + 3.0 * h / (10.0 + np.sqrt(4.0 - 3.0 * h))))
        return float(q * b), float(b)


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    return float(np.clip(rng.normal(mean, sd), lo, hi))


def sample_anatomy(rng: np.random.Generator) -> NeckAnatomy:
    """Draw the anatomy of one adult neck (ranges and sources in the module docstring).

    Args:
        rng: the random generator (its stream decides the anatomy).

    Returns:
        a ``NeckAnatomy``.
    """
    male = bool(rng.random() < 0.5)
    size = (1.045 if male else 0.955) * _truncated_normal(rng, 1.0, 0.06, 0.88, 1.12)
    dim = size * np.clip(rng.normal(1.0, 0.04, size=3), 0.92, 1.08)  # width, depth, height factors
    canal = _truncated_normal(rng, 1.0, 0.07, 0.86, 1.14)
    # per level C3..T2: width, depth, height, canal, processes
    jitter = np.clip(rng.normal(1.0, 0.02, size=(7, 5)), 0.95, 1.05)

    vertebrae = []
    for i in range(7):  # C3..T2
        j = jitter[i]
        vertebrae.append(
            Subaxial(
                bx=0.5 * _BODY_WIDTH[i] * dim[0] * j[0],
                by=0.5 * (_BODY_DEPTH[i] * dim[1] * j[1] - _ANTERIOR_BULGE),
                bh=0.5 * _BODY_HEIGHT[i] * dim[2] * j[2],
                cw=0.5 * _CANAL_WIDTH[i] * canal * j[3],
                cd=0.5 * _CANAL_DEPTH[i] * canal * j[3],
                spine_len=_SPINE_LEN[i] * size * j[4],
                tp_len=_TP_LEN[i] * size * j[4],
                foramen_r=(2.8, 2.8, 2.8, 2.8, 1.8, 0.0, 0.0)[i] * size,
                bifid=i < 4,
            )
        )
    c2 = Axis(
        bx=8.25 * dim[0],
        by=7.5 * dim[1],
        bh=9.5 * dim[2],
        cw=0.5 * 21.6 * canal,
        cd=0.5 * 14.4 * canal,
        spine_len=14.0 * size,
        foramen_r=2.6 * size,
        dens_len=_truncated_normal(rng, 13.0, 1.5, 10.0, 16.0) * size,
        dens_r=_truncated_normal(rng, 5.0, 0.4, 4.2, 5.8) * size,
    )
    c1 = Atlas(
        ring_ax=_truncated_normal(rng, 21.0, 1.2, 18.5, 23.5) * size,
        ring_ay=_truncated_normal(rng, 18.0, 1.0, 16.0, 20.0) * size,
        tp_len=_truncated_normal(rng, 13.0, 1.5, 10.0, 16.0) * size,
        mass=(7.0 * size, 9.0 * size, 8.0 * size),
    )
    disc_person = _truncated_normal(rng, 5.0, 0.9, 3.2, 6.8)
    discs = tuple(float(v) for v in np.clip(disc_person + rng.normal(0.0, 0.4, size=7), 3.0, 7.0) * size)

    lordosis = _truncated_normal(rng, 12.7, 12.0, -15.0, 40.0)
    lean = _truncated_normal(rng, 5.0, 7.0, -12.0, 22.0)
    coronal = tuple(float(v) for v in rng.normal(0.0, 1.0, size=7))
    lateral_tilt = _truncated_normal(rng, 0.0, 3.0, -8.0, 8.0)
    neck_rotation = _truncated_normal(rng, 0.0, 5.0, -12.0, 12.0)
    axial = tuple(float(v) for v in np.clip(rng.normal(0.0, 1.5, size=9), -4.0, 4.0))
    atlas_rotation = _truncated_normal(rng, 0.0, 4.0, -10.0, 10.0)
    atlas_flexion = _truncated_normal(rng, 0.0, 3.0, -7.0, 7.0)
    head_flexion = _truncated_normal(rng, 0.0, 6.7, -15.0, 15.0)
    head_scale = size * _truncated_normal(rng, 1.0, 0.05, 0.9, 1.1)
    position = tuple(float(v) for v in rng.uniform(-1.0, 1.0, size=3))

    neck_mean, neck_sd = (38.0, 3.0) if male else (33.5, 2.5)  # cm
    circumference = 10.0 * _truncated_normal(rng, neck_mean, neck_sd, 29.0, 46.0)
    fat = float(np.clip(3.0 + 0.05 * (circumference - 300.0) + rng.normal(0.0, 1.5), 3.0, 14.0))
    return NeckAnatomy(
        male=male,
        size=float(size),
        vertebrae=(c1, c2, *vertebrae),
        discs=discs,
        lordosis=lordosis,
        lean=lean,
        coronal=coronal,
        lateral_tilt=lateral_tilt,
        neck_rotation=neck_rotation,
        axial=axial,
        atlas_rotation=atlas_rotation,
        atlas_flexion=atlas_flexion,
        head_flexion=head_flexion,
        head_scale=head_scale,
        position=position,
        neck_circumference=circumference,
        neck_aspect=float(rng.uniform(1.0, 1.2)),
        neck_offset=float(rng.uniform(-10.0, 0.0)),
        fat=fat,
        shoulder_drop=_truncated_normal(rng, 0.0, 8.0, -16.0, 16.0),
        airway_scale=(float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.85, 1.15))),
    )
