# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""From a radiograph file to the network's canonical detector grid, as thin transforms after the reader.

``LoadXrayd`` reads with :class:`~xctrs_monai.data.xray_reader.XrayReader` (MONAI's ``LoadImaged``, with
errors that name the view and the file); ``XrayToDetector(d)`` puts the image on the detector of the
training DRRs: the pixel spacing at the detector is rescaled to the DRR detector pixel
(``spacing * sdd / sad``, i.e. one pixel at the isocenter = one voxel of the training grid), the centre
is kept and the field cropped or padded to ``img_size`` pixels (MONAI's ``ResizeWithPadOrCrop``), and the
display layout becomes the canonical one of DESIGN.md with the shared
:func:`~xctrs_monai.transforms.xray.display_to_canonical`. ``NormalizeXrayd`` follows in the config.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection, PathLike
from monai.data import MetaTensor
from monai.transforms import CenterSpatialCrop, EnsureChannelFirst, MapTransform, ResizeWithPadOrCrop, Transform
from monai.utils import ensure_tuple_rep

from xctrs_monai.constants import DEFAULT_GEOMETRY, DEFAULT_IMG_SIZE, DEFAULT_SPACING, grid_origin
from xctrs_monai.data.xray_reader import XrayReader
from xctrs_monai.transforms.xray import VIEWS, display_to_canonical

__all__ = [
    "DISPLAY_ORIENTATION",
    "orient_to_display",
    "view_of_key",
    "LoadXrayd",
    "XrayToDetector",
    "XrayToDetectord",
]

#: DICOM PatientOrientation (direction along a row, direction down a column) of each view's display layout
#: (:mod:`xctrs_monai.transforms.xray`): AP with the patient's left toward the right edge, LA with posterior
#: toward the right edge, feet toward the bottom.
DISPLAY_ORIENTATION: dict[str, tuple[str, str]] = {"ap": ("L", "F"), "la": ("P", "F")}
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}
_LAYOUTS = ("display", "canonical")


def view_of_key(key: Hashable) -> str:
    """The view a data key holds: ``"xray_ap"`` -> ``"ap"``, ``"la"`` -> ``"la"``.

    Raises:
        ValueError: when the key does not end with a view name.
    """
    view = str(key).lower().rsplit("_", 1)[-1]
    if view not in VIEWS:
        raise ValueError(f"cannot tell the view of key {key!r}; give view= explicitly (one of {VIEWS}).")
    return view


def orient_to_display(image: torch.Tensor, patient_orientation: str, view: str) -> tuple[torch.Tensor, list[str]]:
    """Flip/transpose a display-layout radiograph so that its DICOM ``PatientOrientation`` matches the view's.

    ``PatientOrientation`` gives the patient direction of increasing column index (along a row), then of
    increasing row index (down a column), e.g. ``"L\\F"``; only the first letter of each part (the main
    direction of an oblique) is used. The display layouts are :data:`DISPLAY_ORIENTATION`.

    Args:
        image: ``[..., rows, cols]``.
        patient_orientation: the DICOM value, parts separated by a backslash; empty means unknown.
        view: ``"ap"`` or ``"la"``.

    Returns:
        ``(image, operations)``: the re-oriented image and the operations applied, in order, from
        ``"transpose"``, ``"flip_lr"``, ``"flip_ud"`` (none when the orientation is unknown or already right).
    """
    parts = [p.strip().upper()[:1] for p in str(patient_orientation).split("\\")]
    if len(parts) != 2 or not all(p in _OPPOSITE for p in parts):
        return image, []
    along_row, down_col = parts
    want_row, want_col = DISPLAY_ORIENTATION[view]
    ops = []
    if along_row in "HF" and down_col not in "HF":
        image, along_row, down_col = image.transpose(-1, -2), down_col, along_row
        ops.append("transpose")
    if along_row == _OPPOSITE[want_row]:
        image = image.flip(-1)
        ops.append("flip_lr")
    if down_col == _OPPOSITE[want_col]:
        image = image.flip(-2)
        ops.append("flip_ud")
    return image, ops


def _interpolate(
    image: torch.Tensor, size: tuple[int, int] | None = None, scale: tuple[float, float] | None = None
) -> torch.Tensor:
    """Bilinear resampling of ``[1, H, W]`` to ``size`` or by ``scale``, anti-aliased when shrinking.

    MONAI's ``Zoom``/``Resize``/``Spacing`` do not fit: ``Zoom`` and ``Spacing`` do not low-pass before
    shrinking (a 2000-pixel radiograph becomes ~128 pixels: 15x aliasing of noise and edges), ``Zoom``
    recomputes the scale from the rounded size, and ``Resize`` smooths with a Gaussian of its own choice;
    torch's ``interpolate(antialias=True)`` keeps the exact scale with a matched (triangle) filter.
    """
    if size is not None:
        out = F.interpolate(
            image[None], size=size, mode="bilinear", align_corners=False, antialias=min(size) < max(image.shape[-2:])
        )
    else:
        out = F.interpolate(
            image[None],
            scale_factor=scale,
            mode="bilinear",
            align_corners=False,
            antialias=min(scale) < 1.0,
            recompute_scale_factor=False,
        )
    return out[0]


def _plain(x: torch.Tensor) -> torch.Tensor:
    return x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)


class LoadXrayd(MapTransform):
    """Load radiographs with :class:`~xctrs_monai.data.xray_reader.XrayReader`: ``[1, cols, rows]`` MetaTensors.

    What ``LoadImaged(keys, reader="XrayReader", ensure_channel_first=True)`` gives, with two differences:
    no other reader is tried when the radiograph reader refuses a file (``LoadImage`` falls back to MONAI's
    other readers, which would read a CT slice or a volume without the radiograph checks), and every
    error is one line that names the view and the file:
    ``"AP radiograph: Cannot read '<file>' as a radiograph: <reason>"``.

    Args:
        keys: keys of the radiograph paths, e.g. ``("xray_ap", "xray_la")``.
        view: the view of each key (one value or one per key); defaults to ``None`` (the end of the key name).
        apply_voi: see :class:`XrayReader`. Defaults to ``True``.
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.

    Raises:
        ValueError: for a key whose view cannot be told, and (when called) a missing/empty path or an unusable file.
    """

    def __init__(
        self,
        keys: KeysCollection,
        view: str | Sequence[str] | None = None,
        apply_voi: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reader = XrayReader(apply_voi=apply_voi)
        views = [view_of_key(k) for k in self.keys] if view is None else ensure_tuple_rep(view, len(self.keys))
        self.views = dict(zip(self.keys, (str(v).lower() for v in views)))

    def load(self, path: PathLike) -> MetaTensor:
        """One radiograph as ``LoadImage(reader=XrayReader(), ensure_channel_first=True)`` returns it."""
        array, meta = self.reader.get_data(self.reader.read(path))
        image = MetaTensor.ensure_torch_and_prune_meta(np.asarray(array, dtype=np.float32), meta)
        return EnsureChannelFirst()(image)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.keys:
            name = self.views[key].upper()
            if key not in d and self.allow_missing_keys:
                continue
            path = d.get(key)
            if path is None or (isinstance(path, str) and not path.strip()):
                raise ValueError(f"Missing view: no {name} radiograph given (key '{key}').")
            try:
                d[key] = self.load(path)
            except ValueError as e:
                raise ValueError(f"{name} radiograph: {e}") from None
            d[key].meta["view"] = self.views[key]
        return d


class XrayToDetector(Transform):
    """Put a radiograph from :class:`LoadXrayd` on the training DRR detector, in the canonical layout.

    Steps: optional re-orientation by the DICOM ``PatientOrientation`` (:func:`orient_to_display`);
    optional mirroring of the display image (``flip_lr`` for a view acquired mirrored, e.g. a PA instead of
    an AP or a lateral from the other side, ``flip_ud`` for an image stored upside down); with a known pixel
    spacing at the detector, bilinear rescaling to the DRR detector pixel ``spacing * sdd / sad`` (anti-aliased
    when shrinking) and a centred crop or pad with the image minimum (no attenuation, as outside the CT of a
    DRR) to ``img_size`` pixels; without one, the centre square resized to ``img_size`` (the radiograph is
    assumed to be framed on the cervical spine); then ``display_to_canonical``.

    Args:
        view: ``"ap"`` or ``"la"``.
        img_size: detector side N in pixels (the network's ``img_size``). Defaults to ``DEFAULT_IMG_SIZE``.
        spacing: voxel spacing (mm) of the training grid. Defaults to ``DEFAULT_SPACING``.
        sdd: source-to-detector distance (mm); defaults to ``None`` (``DEFAULT_GEOMETRY[view]``).
        sad: source-to-isocenter distance (mm); defaults to ``None`` (``DEFAULT_GEOMETRY[view]``).
        pixel_spacing: detector-plane pixel spacing (mm), a number or ``(row, col)``, overriding the file
            (use it for PNG/JPEG). Defaults to ``None``.
        flip_lr: mirror the display image left-right. Defaults to ``False``.
        flip_ud: mirror the display image top-bottom. Defaults to ``False``.
        use_patient_orientation: first re-orient by the DICOM ``PatientOrientation``. Defaults to ``False``
            (the file is trusted to be in display layout, which is what viewers show).
        layout: ``"display"`` (a radiograph as viewed) or ``"canonical"`` (a canonical image as MONAI's
            ``SaveImage`` writes a ``[1, A, Z]`` tensor, e.g. a DRR saved by this project). Defaults to ``"display"``.
        field_range: accepted range of the image extent at the detector (pixels x pixel spacing, shorter
            and longer side) as a multiple of the detector field ``img_size * spacing * sdd / sad``; outside
            it the pixel spacing is taken to be wrong (a 10x error puts a neck radiograph far outside).
            Defaults to ``(0.25, 6.0)``.

    Raises:
        ValueError: for a bad argument; when called, naming the view and the file, for a pixel spacing that
            is not positive or puts the image extent outside ``field_range``.
    """

    def __init__(
        self,
        view: str,
        img_size: int = DEFAULT_IMG_SIZE,
        spacing: float = DEFAULT_SPACING,
        sdd: float | None = None,
        sad: float | None = None,
        pixel_spacing: float | Sequence[float] | None = None,
        flip_lr: bool = False,
        flip_ud: bool = False,
        use_patient_orientation: bool = False,
        layout: str = "display",
        field_range: Sequence[float] = (0.25, 6.0),
    ) -> None:
        view = str(view).lower()
        if view not in DEFAULT_GEOMETRY:
            raise ValueError(f"view must be one of {tuple(DEFAULT_GEOMETRY)}, got {view!r}.")
        if int(img_size) < 1:
            raise ValueError(f"img_size must be a positive integer, got {img_size}.")
        if not float(spacing) > 0:
            raise ValueError(f"spacing must be > 0 mm, got {spacing}.")
        sdd = DEFAULT_GEOMETRY[view][0] if sdd is None else float(sdd)
        sad = DEFAULT_GEOMETRY[view][1] if sad is None else float(sad)
        if not 0 < sad <= sdd:
            raise ValueError(f"need 0 < sad <= sdd, got sad={sad}, sdd={sdd}.")
        if pixel_spacing is not None:
            pixel_spacing = tuple(float(p) for p in ensure_tuple_rep(pixel_spacing, 2))
            if not all(np.isfinite(p) and p > 0 for p in pixel_spacing):
                raise ValueError(f"pixel_spacing of the {view.upper()} view must be > 0 mm, got {pixel_spacing}.")
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}.")
        if len(field_range) != 2 or not 0 < float(field_range[0]) < float(field_range[1]):
            raise ValueError(f"field_range must be (low, high) with 0 < low < high, got {field_range}.")
        self.field_range = (float(field_range[0]), float(field_range[1]))
        self.view, self.img_size, self.spacing = view, int(img_size), float(spacing)
        self.sdd, self.sad = sdd, sad
        self.pixel_spacing = pixel_spacing
        self.flip_lr, self.flip_ud = bool(flip_lr), bool(flip_ud)
        self.use_patient_orientation = bool(use_patient_orientation)
        self.layout = layout

    @property
    def detector_spacing(self) -> float:
        """Pixel spacing (mm) of the training DRR detector for this view: ``spacing * sdd / sad``."""
        return self.spacing * self.sdd / self.sad

    def _pixel_spacing(self, meta: dict) -> tuple[tuple[float, float] | None, str]:
        if self.pixel_spacing is not None:
            return self.pixel_spacing, "argument"
        source = str(meta.get("pixel_spacing_source", "none"))
        if source == "none":
            return None, source
        spacing = tuple(float(s) for s in meta["pixel_spacing"])
        if not all(np.isfinite(s) and s > 0 for s in spacing):
            shown = "\\".join(f"{s:g}" for s in spacing)
            file = meta.get("filename_or_obj", "")
            raise ValueError(
                f"{self.view.upper()} radiograph '{file}': its {source} {shown} is not a positive pixel spacing; "
                f"give the right one (--{self.view}_pixel_spacing MM)."
            )
        return spacing, source

    def _check_extent(self, shape: Sequence[int], spacing: Sequence[float], source: str, meta: dict) -> None:
        field = self.img_size * self.detector_spacing
        extent = [n * s for n, s in zip(shape, spacing)]
        low, high = min(extent) / field, max(extent) / field
        if low < self.field_range[0] or high > self.field_range[1]:
            flag = f"--{self.view}_pixel_spacing"
            raise ValueError(
                f"{self.view.upper()} radiograph '{meta.get('filename_or_obj', '')}': {shape[0]} x {shape[1]} pixels "
                f"of {spacing[0]:g} x {spacing[1]:g} mm ({source}) cover {extent[0]:.0f} x {extent[1]:.0f} mm at the "
                f"detector, {low:.2g}-{high:.2g} times the model's {field:.0f} mm field (accepted "
                f"{self.field_range[0]:g}-{self.field_range[1]:g}); the pixel spacing looks wrong: give the right one "
                f"with {flag} MM."
            )

    def __call__(self, img: MetaTensor) -> MetaTensor:
        """
        Args:
            img: ``[1, cols, rows]`` MetaTensor from :class:`LoadXrayd` (MONAI's 2D convention).

        Returns:
            ``[1, N, N]`` float32 MetaTensor in the canonical layout with the detector affine, keeping the
            reader's metadata and adding ``view``, ``detector_spacing``, ``resampling``, ``reoriented``,
            ``flip_lr``, ``flip_ud`` and the ``pixel_spacing``/``pixel_spacing_source`` used.
        """
        meta = dict(img.meta) if isinstance(img, MetaTensor) else {}
        display = _plain(img).float().transpose(-1, -2)  # [1, rows, cols]
        spacing, source = self._pixel_spacing(meta)
        reoriented: list[str] = []
        if self.use_patient_orientation and meta.get("patient_orientation"):
            display, reoriented = orient_to_display(display, meta["patient_orientation"], self.view)
            if "transpose" in reoriented and spacing is not None:
                spacing = spacing[::-1]
        if self.flip_lr:
            display = display.flip(-1)
        if self.flip_ud:
            display = display.flip(-2)
        size, target = self.img_size, self.detector_spacing
        if spacing is not None:
            self._check_extent(display.shape[-2:], spacing, source, meta)
            scale = (spacing[0] / target, spacing[1] / target)
            if not np.allclose(scale, 1.0, rtol=1e-6, atol=0.0):
                display = _interpolate(display, scale=scale)
            display = _plain(ResizeWithPadOrCrop((size, size), mode="constant")(display, value=float(display.min())))
            resampling = "detector_geometry"
        else:
            side = min(display.shape[-2:])
            display = _plain(CenterSpatialCrop((side, side))(display))
            if side != size:
                display = _interpolate(display, size=(size, size))
            resampling = "centre_square"
        if float(display.max() - display.min()) == 0.0:
            raise ValueError(
                f"{self.view.upper()} radiograph '{meta.get('filename_or_obj', '')}' is constant inside the "
                f"{size}x{size} field of view."
            )
        # "canonical" files follow MONAI's 2D IO (LoadImage/SaveImage): the array is already canonical
        out = display_to_canonical(display, self.view) if self.layout == "display" else display.transpose(-1, -2)
        affine = torch.diag(torch.tensor([target, target, 1.0], dtype=torch.float64))
        affine[:2, 2] = grid_origin(size, target)
        meta.update(
            {
                "view": self.view,
                "detector_spacing": target,
                "pixel_spacing": tuple(spacing) if spacing is not None else (0.0, 0.0),
                "pixel_spacing_source": source,
                "resampling": resampling,
                "reoriented": ",".join(reoriented),
                "flip_lr": self.flip_lr,
                "flip_ud": self.flip_ud,
                "original_channel_dim": "no_channel",
                "spatial_shape": (size, size),
            }
        )
        meta.pop("affine", None)
        return MetaTensor(out.contiguous().float(), affine=affine, meta=meta)


class XrayToDetectord(MapTransform):
    """Dictionary wrapper of :class:`XrayToDetector`, one per key (the view of each key may differ).

    Args:
        keys: keys of the loaded radiographs, e.g. ``"xray_ap"``.
        view: the view of each key (one value or one per key); defaults to ``None`` (the end of the key name).
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.
        kwargs: the other :class:`XrayToDetector` arguments, the same for every key.
    """

    def __init__(
        self,
        keys: KeysCollection,
        view: str | Sequence[str] | None = None,
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        views = [view_of_key(k) for k in self.keys] if view is None else ensure_tuple_rep(view, len(self.keys))
        self.transforms = {key: XrayToDetector(view=v, **kwargs) for key, v in zip(self.keys, views)}

    def __call__(self, data: Mapping[Hashable, MetaTensor]) -> dict[Hashable, MetaTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transforms[key](d[key])
        return d
