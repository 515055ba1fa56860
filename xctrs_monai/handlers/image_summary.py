# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""TensorBoard image summaries of X-CTRSNet validation: both radiographs, CT slices and label slices."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from monai.utils import IgniteInfo, min_version, optional_import

from xctrs_monai.constants import LABEL_COLOURS
from xctrs_monai.engines.keys import XCTRSKeys
from xctrs_monai.transforms.xray import canonical_to_display

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
SummaryWriter, _ = optional_import("torch.utils.tensorboard", name="SummaryWriter")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

# LABEL_COLOURS is re-exported from xctrs_monai.constants, its one home
__all__ = ["LABEL_COLOURS", "ReconstructionImageHandler", "volume_planes", "colour_labels"]



def volume_planes(volume: torch.Tensor) -> dict[str, torch.Tensor]:
    """
    The three central slices of a volume in display orientation.

    The coronal slice (``[X, Z]``) and the sagittal slice (``[Y, Z]``) have the AP and LA radiograph layouts
    and go through ``canonical_to_display``; the axial slice (``[X, Y]``) follows the same rule, which gives
    the radiological convention (anterior at the top, the patient's right on the viewer's left).

    Args:
        volume: ``[X, Y, Z]`` or ``[1, X, Y, Z]``.

    Returns:
        ``{"axial": [Y, X], "coronal": [Z, X], "sagittal": [Z, Y]}`` display images.
    """
    v = volume[0] if volume.ndim == 4 else volume
    x, y, z = (s // 2 for s in v.shape)
    return {
        "axial": canonical_to_display(v[:, :, z], "ap"),
        "coronal": canonical_to_display(v[:, y, :], "ap"),
        "sagittal": canonical_to_display(v[x, :, :], "la"),
    }


def colour_labels(labels: torch.Tensor) -> torch.Tensor:
    """
    RGB image ``[3, H, W]`` on [0, 1] of an integer label image ``[H, W]`` (colours: ``LABEL_COLOURS``).

    Args:
        labels: integer labels; values beyond the palette wrap around.

    Returns:
        the colour image.
    """
    palette = torch.tensor(LABEL_COLOURS, dtype=torch.float32) / 255.0
    idx = labels.long().clamp(min=0) % len(LABEL_COLOURS)
    return palette[idx].permute(2, 0, 1)


def _label_volume(value: torch.Tensor) -> torch.Tensor:
    """Integer labels ``[X, Y, Z]`` from a one-hot / logit ``[C, X, Y, Z]`` or a label map ``[1, X, Y, Z]``."""
    value = value.detach().float().cpu()
    return value.argmax(0) if value.shape[0] > 1 else value[0].round()


def _grey(img: torch.Tensor, lo: float | None = None, hi: float | None = None) -> torch.Tensor:
    img = img.detach().float().cpu()
    lo = float(img.min()) if lo is None else lo
    hi = float(img.max()) if hi is None else hi
    return ((img - lo) / max(hi - lo, 1e-8)).clamp(0, 1)[None]


def _row(images: list[torch.Tensor], gap: int = 2) -> torch.Tensor:
    """Concatenate ``[C, H, W]`` images side by side with a white gap."""
    h = max(i.shape[1] for i in images)
    parts: list[torch.Tensor] = []
    for k, img in enumerate(images):
        if img.shape[1] < h:
            img = torch.nn.functional.pad(img, (0, 0, 0, h - img.shape[1]))
        if k:
            parts.append(torch.ones(img.shape[0], h, gap))
        parts.append(img)
    return torch.cat(parts, dim=2)


class ReconstructionImageHandler:
    """
    Write image summaries of the first validation case to TensorBoard once per validation run.

    Tags (``tag_prefix`` + name), all in display orientation:

    - ``xray``: AP | LA input radiographs;
    - ``ct_axial``, ``ct_coronal``, ``ct_sagittal``: central slices, ground truth | reconstruction |
      absolute error, on the [0, 1] CT scale;
    - ``label_axial``, ``label_coronal``, ``label_sagittal``: ground-truth labels | segmentation of the
      reconstruction, coloured by ``LABEL_COLOURS``.

    Attach it to the evaluator; the global step is the evaluator's epoch, i.e. the trainer's epoch when
    validation runs through ``ValidationHandler``.

    Args:
        summary_writer: a ``SummaryWriter``; defaults to ``None``: one is created on ``log_dir``.
        log_dir: TensorBoard folder when no writer is given. Defaults to ``"./runs"``.
        interval: write every ``interval`` validation runs (epochs). Defaults to 1.
        batch_index: which item of the first batch to show. Defaults to 0.
        tag_prefix: prefix of the tags. Defaults to ``"val_"``.
        output_transform: maps ``engine.state.output`` to one item's dict. Defaults to ``None``: item
            ``batch_index`` of the decollated output.
        global_step_transform: maps the evaluator's epoch to the logged step. Defaults to identity.
    """

    def __init__(
        self,
        summary_writer: Any | None = None,
        log_dir: str = "./runs",
        interval: int = 1,
        batch_index: int = 0,
        tag_prefix: str = "val_",
        output_transform: Callable[[Any], Mapping] | None = None,
        global_step_transform: Callable[[int], int] = lambda x: x,
    ) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}.")
        self._writer = summary_writer
        self._own_writer = summary_writer is None
        self.log_dir = log_dir
        self.interval = interval
        self.batch_index = batch_index
        self.tag_prefix = tag_prefix
        self.output_transform = output_transform
        self.global_step_transform = global_step_transform

    @property
    def writer(self) -> Any:
        if self._writer is None:
            self._writer = SummaryWriter(log_dir=self.log_dir)
        return self._writer

    def attach(self, engine: Engine) -> None:
        """
        Args:
            engine: the evaluator.
        """
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _item(self, output: Any) -> Mapping | None:
        if self.output_transform is not None:
            return self.output_transform(output)
        if isinstance(output, Mapping):
            index = self.batch_index
            return {k: v[index] if isinstance(v, torch.Tensor) and v.ndim > 0 else v for k, v in output.items()}
        if isinstance(output, (list, tuple)) and len(output) > self.batch_index:
            return output[self.batch_index]
        return None

    def __call__(self, engine: Engine) -> None:
        """Write the summaries when this is the first iteration of a selected validation run."""
        epoch_length = engine.state.epoch_length or 1
        if (engine.state.iteration - 1) % epoch_length != 0 or engine.state.epoch % self.interval != 0:
            return
        item = self._item(engine.state.output)
        if not item:
            return
        self.write(item, self.global_step_transform(engine.state.epoch))

    def write(self, item: Mapping, step: int) -> None:
        """
        Write the images of one output item.

        Args:
            item: a decollated output dict with some of ``xray``, ``ct``, ``pred_ct``, ``label``, ``pred_seg``.
            step: the global step.
        """
        keys, prefix, writer = XCTRSKeys, self.tag_prefix, self.writer
        xray = item.get(keys.XRAY)
        if isinstance(xray, torch.Tensor) and xray.ndim == 3 and xray.shape[0] == 2:
            views = [_grey(canonical_to_display(xray[i].detach().cpu(), v)) for i, v in enumerate(("ap", "la"))]
            writer.add_image(f"{prefix}xray", _row(views), step)
        ct, pred_ct = item.get(keys.CT), item.get(keys.PRED_CT)
        if isinstance(pred_ct, torch.Tensor):
            pred_planes = volume_planes(pred_ct.detach().float().cpu())
            gt_planes = volume_planes(ct.detach().float().cpu()) if isinstance(ct, torch.Tensor) else None
            for plane, rec in pred_planes.items():
                images = [_grey(rec, 0.0, 1.0)]
                if gt_planes is not None:
                    gt = gt_planes[plane]
                    images = [_grey(gt, 0.0, 1.0), images[0], _grey((rec - gt).abs(), 0.0, 1.0)]
                writer.add_image(f"{prefix}ct_{plane}", _row(images), step)
        label, pred_seg = item.get(keys.LABEL), item.get(keys.PRED_SEG)
        if isinstance(pred_seg, torch.Tensor):
            pred_planes = volume_planes(_label_volume(pred_seg))
            gt_planes = volume_planes(_label_volume(label)) if isinstance(label, torch.Tensor) else None
            for plane, seg in pred_planes.items():
                images = [colour_labels(seg)]
                if gt_planes is not None:
                    images.insert(0, colour_labels(gt_planes[plane]))
                writer.add_image(f"{prefix}label_{plane}", _row(images), step)
        writer.flush()

    def close(self) -> None:
        """Close the writer if this handler created it."""
        if self._own_writer and self._writer is not None:
            self._writer.close()
