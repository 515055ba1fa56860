# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Draw a run's validation learning curve (mean Dice, PSNR, SSIM per epoch) with the X-ray-blind prior as a line.

Reads the TensorBoard logs that ``train.json`` writes (``bundle/runs``): the validation metrics of the model
(``val_mean_dice``, ``val_psnr_eq18``, ``val_ssim_eq17``) and those of the prior that
``XrayBlindPriorHandler`` logs beside them (``prior_val_...``, constant over the epochs). The gap between the
curve and the line is what the model learned from the radiographs.

Drawn with Pillow (already a dependency) rather than matplotlib, which the package does not need otherwise.

Example::

    python scripts/plot_learning_curve.py --log_dir bundle/runs --out bundle/eval/learning_curve.png
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import fire
import numpy as np

PANELS = (
    ("dice_tag", "Mean Dice (%)", 100.0),
    ("psnr_tag", "PSNR (Eq. 18, dB)", 1.0),
    ("ssim_tag", "SSIM (Eq. 17, global)", 1.0),
)
MODEL_COLOUR, PRIOR_COLOUR, AXIS_COLOUR, GRID_COLOUR = (31, 119, 180), (214, 39, 40), (40, 40, 40), (225, 225, 225)


def read_curves(log_dir: str, tags: dict[str, str], prior_prefix: str = "prior_") -> dict[str, dict]:
    """
    Read the model's validation series and the prior's value of each tag from TensorBoard event files.

    Args:
        log_dir: folder of the event files (all of them are read; a resumed run keeps the last value per epoch).
        tags: ``{panel: tag}``.
        prior_prefix: prefix of the prior's tags. Defaults to ``"prior_"``.

    Returns:
        ``{panel: {"tag", "epochs", "values", "prior"}}``; ``prior`` is None when the run did not log it.

    Raises:
        ValueError: when ``log_dir`` has no event file or lacks a tag (the message lists the tags it has).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(Path(log_dir).glob("**/events.out.tfevents.*")) if os.path.isdir(log_dir) else []
    if not files:
        raise ValueError(f"no TensorBoard event file in {log_dir!r}; train with train.json first.")
    series: dict[str, dict[int, float]] = {}
    for path in files:
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            for event in acc.Scalars(tag):
                series.setdefault(tag, {})[int(event.step)] = float(event.value)
    curves = {}
    for panel, tag in tags.items():
        if tag not in series:
            raise ValueError(f"{log_dir!r} has no scalar {tag!r}; it has {sorted(series)}.")
        epochs = sorted(series[tag])
        prior = series.get(prior_prefix + tag)
        curves[panel] = {
            "tag": tag,
            "epochs": epochs,
            "values": [series[tag][e] for e in epochs],
            "prior": prior[max(prior)] if prior else None,
        }
    return curves


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / max(count - 1, 1)
    step = min((f * 10 ** math.floor(math.log10(raw)) for f in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _dashed(draw, y: float, x0: float, x1: float, colour, width: int = 3, dash: int = 12) -> None:
    x = x0
    while x < x1:
        draw.line([(x, y), (min(x + dash, x1), y)], fill=colour, width=width)
        x += 2 * dash


def _panel(draw, box: tuple[int, int, int, int], title: str, curve: dict, scale: float, font, small) -> None:
    left, top, right, bottom = box
    epochs, values = curve["epochs"], [v * scale for v in curve["values"]]
    prior = None if curve["prior"] is None else curve["prior"] * scale
    y_ticks = _nice_ticks(
        min(values + ([prior] if prior is not None else [])), max(values + ([prior] if prior is not None else []))
    )
    y_low, y_high = y_ticks[0], y_ticks[-1]
    x_low, x_high = min(epochs), max(max(epochs), min(epochs) + 1)

    def px(e: float, v: float) -> tuple[float, float]:
        return left + (e - x_low) / (x_high - x_low) * (right - left), bottom - (v - y_low) / (y_high - y_low) * (
            bottom - top
        )

    draw.text(((left + right) / 2, top - 28), title, fill=AXIS_COLOUR, font=font, anchor="mm")
    for t in y_ticks:
        y = px(x_low, t)[1]
        draw.line([(left, y), (right, y)], fill=GRID_COLOUR, width=1)
        draw.text((left - 8, y), f"{t:g}", fill=AXIS_COLOUR, font=small, anchor="rm")
    for e in _nice_ticks(x_low, x_high, 6):
        if x_low <= e <= x_high and float(e).is_integer():
            x = px(e, y_low)[0]
            draw.line([(x, bottom), (x, bottom + 5)], fill=AXIS_COLOUR, width=1)
            draw.text((x, bottom + 8), f"{int(e)}", fill=AXIS_COLOUR, font=small, anchor="mt")
    draw.text(((left + right) / 2, bottom + 30), "epoch", fill=AXIS_COLOUR, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=AXIS_COLOUR, width=1)
    if prior is not None:
        _dashed(draw, px(x_low, prior)[1], left, right, PRIOR_COLOUR)
    points = [px(e, v) for e, v in zip(epochs, values)]
    if len(points) > 1:
        draw.line(points, fill=MODEL_COLOUR, width=3)
    for x, y in points:
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=MODEL_COLOUR)
    legend = [(MODEL_COLOUR, f"model (last {values[-1]:.3g})")]
    if prior is not None:
        legend.append((PRIOR_COLOUR, f"X-ray-blind prior {prior:.3g}"))
    text_width = max(draw.textlength(text, font=small) for _, text in legend)
    draw.rectangle(
        [left + 4, top + 4, left + 48 + text_width, top + 24 + 20 * (len(legend) - 1)],
        fill=(255, 255, 255),
        outline=GRID_COLOUR,
    )
    for i, (colour, text) in enumerate(legend):
        y = top + 14 + 20 * i
        draw.line([(left + 10, y), (left + 34, y)], fill=colour, width=3)
        draw.text((left + 40, y), text, fill=AXIS_COLOUR, font=small, anchor="lm")


def draw_curves(curves: dict[str, dict], out: str, title: str = "", panel_size: tuple[int, int] = (480, 360)) -> str:
    """
    Draw one panel per curve (model as a line with points, prior as a dashed horizontal line) into a PNG,
    written atomically.

    Args:
        curves: the output of :func:`read_curves`.
        out: PNG path.
        title: a line above the panels. Defaults to "".
        panel_size: ``(width, height)`` of each panel's plotting area in pixels. Defaults to (480, 360).

    Returns:
        the PNG path.
    """
    from PIL import Image, ImageDraw

    from xctrs_monai.data import save_png

    margin_left, margin_top, margin_bottom, gap = 70, 80, 70, 90
    width = margin_left + len(curves) * (panel_size[0] + gap)
    height = margin_top + panel_size[1] + margin_bottom
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font, small = _font(18), _font(14)
    if title:
        draw.text((width / 2, 16), title, fill=AXIS_COLOUR, font=small, anchor="mt")
    scales = {panel: scale for _, panel, scale in PANELS}
    for i, (panel, curve) in enumerate(curves.items()):
        left = margin_left + i * (panel_size[0] + gap)
        box = (left, margin_top, left + panel_size[0], margin_top + panel_size[1])
        _panel(draw, box, panel, curve, scales.get(panel, 1.0), font, small)
    return str(save_png(np.asarray(image), out))


def main(
    log_dir: str = "bundle/runs",
    out: str = "bundle/eval/learning_curve.png",
    dice_tag: str = "val_mean_dice",
    psnr_tag: str = "val_psnr_eq18",
    ssim_tag: str = "val_ssim_eq17",
    prior_prefix: str = "prior_",
    title: str | None = None,
) -> None:
    """Draw validation mean Dice, PSNR and SSIM per epoch of the run in ``log_dir``, with the prior as a line.

    Args:
        log_dir: TensorBoard folder of the run. Defaults to ``"bundle/runs"``.
        out: PNG to write. Defaults to ``"bundle/eval/learning_curve.png"``.
        dice_tag: mean Dice scalar (a fraction; drawn in percent). Defaults to ``"val_mean_dice"``.
        psnr_tag: PSNR scalar. Defaults to ``"val_psnr_eq18"`` (Eq. 18); ``"val_psnr"`` is MONAI's.
        ssim_tag: SSIM scalar. Defaults to ``"val_ssim_eq17"`` (Eq. 17); ``"val_ssim"`` is MONAI's windowed one.
        prior_prefix: prefix of the prior's scalars. Defaults to ``"prior_"``.
        title: the line above the panels. Defaults to ``"validation of <log_dir>"``.

    Prints the PNG path and, per panel, the last and best model value and the prior's value.
    """
    args = {"dice_tag": dice_tag, "psnr_tag": psnr_tag, "ssim_tag": ssim_tag}
    curves = read_curves(log_dir, {panel: args[key] for key, panel, _ in PANELS}, prior_prefix)
    path = draw_curves(curves, out, title=title or f"validation of {os.path.abspath(log_dir)}")
    print(f"learning curve: {path}")
    for panel, curve in curves.items():
        scale = next(s for _, p, s in PANELS if p == panel)
        prior = "not logged" if curve["prior"] is None else f"{curve['prior'] * scale:.4g}"
        values = [v * scale for v in curve["values"]]
        print(f"  {panel}: last {values[-1]:.4g} (epoch {curve['epochs'][-1]}), best {max(values):.4g}, prior {prior}")


if __name__ == "__main__":
    fire.Fire(main)
