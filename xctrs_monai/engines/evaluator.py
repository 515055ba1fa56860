# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Evaluator of X-CTRSNet: reconstruction (PSNR, SSIM, MAE) and segmentation (Dice, HD95, ASSD) from two radiographs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents, default_metric_cmp_fn
from monai.inferers import Inferer
from monai.transforms import Transform
from monai.utils import ForwardMode, IgniteInfo, min_version, optional_import

from xctrs_monai.engines.keys import XCTRSKeys
from xctrs_monai.engines.prepare_batch import XCTRSPrepareBatch

if TYPE_CHECKING:
    from ignite.engine import EventEnum
    from ignite.metrics import Metric
else:
    Metric, _ = optional_import("ignite.metrics", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Metric")
    EventEnum, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "EventEnum")

__all__ = ["XCTRSEvaluator"]


class XCTRSEvaluator(SupervisedEvaluator):
    """
    Evaluate X-CTRSNet through its deployable path: ``pred = network([AP, LA])`` (``B2NN -> B9NNN``).

    ``engine.state.output`` holds ``xray``, ``ct`` and ``label`` (when in the batch), ``pred`` (the network's
    raw output), and its two parts ``pred_ct`` (``B1NNN``, clipped to ``ct_range``: the HU window's [0, 1],
    the scale every intensity metric uses) and ``pred_seg`` (``B8NNN`` logits). Metric handlers read them
    with ``monai.handlers.from_engine``: PSNR, SSIM and MAE on ``["pred_ct", "ct"]``
    (``xctrs_monai.metrics.PaperPSNRMetric`` and ``GlobalSSIMMetric`` for the paper's Eq. 18 and 17 beside
    MONAI's ``PSNRMetric``/``SSIMMetric``), Dice, HD95 and ASSD on ``["pred_seg", "label"]`` after a
    postprocessing ``AsDiscreted(keys=["pred_seg", "label"], argmax=[True, False], to_onehot=8)``.
    Without ``image``/``label`` in the batch (inference) it only predicts.

    Any module with the network's interface can be evaluated, e.g. ``xctrs_monai.metrics.XrayBlindPrior``,
    which ignores the radiographs: the same metrics on the same cases then give the baseline the model
    must beat (``xctrs_monai.handlers.XrayBlindPriorHandler``).

    Args:
        device: device to evaluate on.
        val_data_loader: loader of data dicts with ``xray_ap``, ``xray_la`` and optionally ``image`` (CT on
            [0, 1]) and ``label``.
        network: ``XCTRSNet`` (or a wrapper): ``forward(B2NN) -> B9NNN``.
        epoch_length: iterations per run. Defaults to ``len(val_data_loader)``.
        non_blocking: non-blocking host-to-device copies. Defaults to False.
        prepare_batch: batch -> ``(xray, ct, label)``. Defaults to ``XCTRSPrepareBatch()``.
        iteration_update: replaces ``_iteration`` when given. Defaults to None.
        inferer: how to call ``network``. Defaults to ``SimpleInferer()``.
        postprocessing: transforms applied to the decollated output. Defaults to None.
        key_val_metric: the metric that selects the best model. Defaults to None.
        additional_metrics: further metrics. Defaults to None.
        metric_cmp_fn: see ``SupervisedEvaluator``. Defaults to greater-is-better.
        val_handlers: handlers with ``attach(engine)``. Defaults to None.
        amp: run the network under ``torch.autocast``. Defaults to False.
        mode: ``"eval"`` or ``"train"`` forward mode. Defaults to ``"eval"``.
        event_names: see ``SupervisedEvaluator``. Defaults to None.
        event_to_attr: see ``SupervisedEvaluator``. Defaults to None.
        decollate: decollate batch and output. Defaults to True.
        to_kwargs: further ``Tensor.to`` arguments. Defaults to None.
        amp_kwargs: further ``torch.autocast`` arguments. Defaults to None.
        ct_range: ``(low, high)`` that ``pred_ct`` is clipped to; None keeps it raw. Defaults to ``(0.0, 1.0)``.

    Raises:
        ValueError: when ``ct_range`` is not ``(low, high)`` with ``low < high``.
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader: Iterable | DataLoader,
        network: torch.nn.Module,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable | None = None,
        iteration_update: Callable | None = None,
        inferer: Inferer | None = None,
        postprocessing: Transform | None = None,
        key_val_metric: dict[str, Metric] | None = None,
        additional_metrics: dict[str, Metric] | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        val_handlers: Sequence | None = None,
        amp: bool = False,
        mode: ForwardMode | str = ForwardMode.EVAL,
        event_names: list[str | EventEnum | type[EventEnum]] | None = None,
        event_to_attr: dict | None = None,
        decollate: bool = True,
        to_kwargs: dict | None = None,
        amp_kwargs: dict | None = None,
        ct_range: tuple[float, float] | None = (0.0, 1.0),
    ) -> None:
        if ct_range is not None and (len(ct_range) != 2 or not float(ct_range[0]) < float(ct_range[1])):
            raise ValueError(f"ct_range must be (low, high) with low < high, or None, got {ct_range}.")
        self.ct_range = None if ct_range is None else (float(ct_range[0]), float(ct_range[1]))
        super().__init__(
            device=device,  # type: ignore[arg-type]
            val_data_loader=val_data_loader,
            network=network,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=XCTRSPrepareBatch() if prepare_batch is None else prepare_batch,
            iteration_update=iteration_update,
            inferer=inferer,
            postprocessing=postprocessing,
            key_val_metric=key_val_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            val_handlers=val_handlers,
            amp=amp,
            mode=mode,
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=decollate,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )

    def _iteration(self, engine: XCTRSEvaluator, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        """
        Reconstruct and segment one batch.

        Args:
            engine: this evaluator.
            batchdata: a collated data dict.

        Returns:
            ``engine.state.output`` (keys of :class:`XCTRSKeys`).

        Raises:
            ValueError: when ``batchdata`` is None.
        """
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        xray, ct, label = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        keys = XCTRSKeys
        output: dict[str, Any] = {keys.XRAY: xray}
        if ct is not None:
            output[keys.CT] = ct
        if label is not None:
            output[keys.LABEL] = label
        engine.state.output = output
        with engine.mode(engine.network):
            with torch.autocast(engine.state.device.type, enabled=engine.amp, **engine.amp_kwargs):
                pred = engine.inferer(xray, engine.network)
        pred = pred.float()
        pred_ct = pred[:, :1] if engine.ct_range is None else pred[:, :1].clamp(*engine.ct_range)
        output.update({keys.PRED: pred, keys.PRED_CT: pred_ct, keys.PRED_SEG: pred[:, 1:]})
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
