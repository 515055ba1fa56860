# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Trainer for the coupled reconstruction-segmentation iteration of X-CTRSNet (Ge et al., 2021, Eq. 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents, default_metric_cmp_fn
from monai.engines.workflow import Workflow
from monai.inferers import Inferer
from monai.transforms import Transform
from monai.utils import IgniteInfo, min_version, optional_import

from xctrs_monai.engines.keys import XCTRSKeys
from xctrs_monai.engines.prepare_batch import XCTRSPrepareBatch
from xctrs_monai.networks.memory import instance_norm_channels_last_backward_ok, to_channels_last

if TYPE_CHECKING:
    from ignite.engine import EventEnum
    from ignite.metrics import Metric
else:
    Metric, _ = optional_import("ignite.metrics", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Metric")
    EventEnum, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "EventEnum")

__all__ = ["XCTRSTrainer", "unwrap_network"]


def unwrap_network(network: torch.nn.Module) -> torch.nn.Module:
    """The module inside ``DistributedDataParallel`` / ``DataParallel`` wrappers (their public ``module``).

    Compiled networks need no unwrapping: ``network.compile()`` (``nn.Module.compile``) compiles in place
    and keeps the module, and the wrapper that ``torch.compile(network)`` returns gives access to the
    attributes of the module it wraps (``compiled.segmenter`` is ``network.segmenter``). Reaching the
    wrapped module itself would take a private attribute, so it is returned as it is.

    Args:
        network: a module, possibly wrapped (several times) for data parallelism.

    Returns:
        the innermost module that is not a data-parallel wrapper.
    """
    while isinstance(network, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        network = network.module
    return network


def _check_channels_last_training(network: torch.nn.Module, device: torch.device) -> None:
    """Refuse channels-last training where this torch build gets InstanceNorm gradients wrong."""
    norms = (torch.nn.InstanceNorm1d, torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d)
    if any(isinstance(m, norms) for m in network.modules()) and not instance_norm_channels_last_backward_ok(device):
        raise ValueError(
            f"channels_last=True would train on wrong gradients: torch {torch.__version__} computes the "
            f"backward of instance_norm wrongly for channels-last gradients on {device.type} (batch 1), and "
            f"the network has InstanceNorm layers. Train with channels_last=False (bfloat16 autocast keeps most "
            f"of the speed) and use channels-last for inference, or norm layers other than InstanceNorm."
        )


class XCTRSTrainer(SupervisedTrainer):
    """
    One optimisation step of X-CTRSNet: reconstruct, segment the reconstruction and the ground-truth CT,
    and minimise ``L_R + L_S + L_RSC`` (Ge et al., 2021, Eq. 1 and 16) over both networks at once.

    Per iteration::

        xray = [AP, LA]                                   # B2NN, from ``prepare_batch``
        pred = network(xray)                              # B9NNN: ct_hat (ch 0) + S(ct_hat) logits
        pred_seg_gt = network.segmenter(ct)               # S(ct) logits, for RSC learning
        terms = loss_function.terms(ct_hat, ct, S(ct_hat), S(ct), label)
        terms["loss"].backward(); optimizer.step()

    The reconstruction and its segmentation come from one call of ``network`` (``XCTRSNet.forward``), so
    a ``DistributedDataParallel`` wrapper sees one forward per step and synchronises the gradients of
    both sub-networks; ``S(ct)`` reuses the segmenter's parameters inside the same autograd graph. With an
    ablation that leaves the segmenter without gradients (``use_segmentation=False, use_rsc=False``), DDP
    needs ``find_unused_parameters=True``.

    ``engine.state.output`` holds the keys of :class:`XCTRSKeys`: ``xray``, ``ct``, ``label``, ``pred``,
    ``pred_ct``, ``pred_seg``, ``pred_seg_gt`` (when computed), ``loss`` and one ``loss_<term>`` per
    entry of ``loss_function.terms`` (``loss_mae``, ``loss_mv``, ``loss_seg``, ``loss_rsc_seg``,
    ``loss_rsc_div``, ``loss_rsc``, ...), so MONAI's ``StatsHandler``/``TensorBoardStatsHandler`` can log
    them with ``output_transform=xctrs_monai.handlers.from_loss_terms()``.

    Mixed precision (``amp=True``) runs the forward pass and the loss under ``torch.autocast`` on the
    device type, in ``amp_kwargs["dtype"]`` (MONAI's own argument; without it, autocast's default for the
    device: float16 on CUDA, bfloat16 on CPU). bfloat16 keeps float32's exponent range and needs no
    gradient scaling; float16 (GPUs without bfloat16) does, so the ``torch.amp.GradScaler`` is enabled
    only for float16. It lives as long as the trainer (``trainer.scaler``) so that it can be put into a
    resumable checkpoint. The outputs in ``engine.state.output`` are float32 whatever the precision.

    ``channels_last=True`` converts the network's convolutions (in place, once) and each batch's
    inputs to the channels-last layouts (:func:`~xctrs_monai.networks.to_channels_last`), the fast
    layout of oneDNN/cuDNN convolutions in reduced precision, when the torch build computes InstanceNorm
    gradients right in that layout (torch 2.13.0 on CPU does not at batch 1: the trainer refuses).
    The conversion keeps the parameter
    objects, so an optimizer built before still works; with ``DistributedDataParallel`` convert the
    module before wrapping it, so that DDP's gradient buckets get the same layout. An evaluator that
    shares the network runs channels-last too: a convolution with a channels-last weight returns a
    channels-last output.

    Args:
        device: device to train on.
        max_epochs: number of epochs.
        train_data_loader: loader of data dicts with ``xray_ap``, ``xray_la``, ``image`` (CT on [0, 1]) and
            ``label``.
        network: ``XCTRSNet`` (possibly wrapped by DDP): ``forward(B2NN) -> B9NNN`` and a ``segmenter``.
        optimizer: one optimizer over both sub-networks (Adam, lr 1e-3 in the paper, Sect. 3.1).
        loss_function: ``XCTRSLoss`` or any loss with ``terms(ct_hat, ct, seg_hat, seg_gt_ct, label)``
            returning a dict with ``"loss"``; a plain callable with the same arguments returning a tensor
            also works. An ``nn.Module`` loss is moved to ``device``.
        epoch_length: iterations per epoch. Defaults to ``len(train_data_loader)``.
        non_blocking: non-blocking host-to-device copies. Defaults to False.
        prepare_batch: batch -> ``(xray, ct, label)``. Defaults to ``XCTRSPrepareBatch()``.
        iteration_update: replaces ``_iteration`` when given. Defaults to None.
        inferer: how to call ``network`` on ``xray``. Defaults to ``SimpleInferer()``.
        postprocessing: transforms applied to the decollated output. Defaults to None.
        key_train_metric: see ``SupervisedTrainer``. Defaults to None.
        additional_metrics: see ``SupervisedTrainer``. Defaults to None.
        metric_cmp_fn: see ``SupervisedTrainer``. Defaults to greater-is-better.
        train_handlers: handlers with ``attach(engine)``. Defaults to None.
        amp: mixed precision: autocast in ``amp_kwargs["dtype"]``, with gradient scaling for float16.
            Defaults to False.
        segment_gt_ct: compute ``S(ct)`` every step. Defaults to None: when ``loss_function.use_rsc``
            (True when the loss has no such attribute).
        event_names: see ``SupervisedTrainer``. Defaults to None.
        event_to_attr: see ``SupervisedTrainer``. Defaults to None.
        decollate: decollate batch and output after each step. Defaults to True.
        optim_set_to_none: ``optimizer.zero_grad(set_to_none=...)``. Defaults to False.
        to_kwargs: further ``Tensor.to`` arguments for ``prepare_batch``. Defaults to None.
        amp_kwargs: further ``torch.autocast`` arguments, e.g. ``{"dtype": torch.bfloat16}``. Defaults to None.
        channels_last: convert the network and the inputs to the channels-last layouts. Defaults to False.

    Raises:
        ValueError: when ``amp_kwargs["dtype"]`` is not float16 or bfloat16, when ``channels_last`` is
            asked for a network with InstanceNorm on a torch build whose InstanceNorm backward is wrong for
            channels-last gradients (:func:`~xctrs_monai.networks.instance_norm_channels_last_backward_ok`),
            or when a batch has no ground-truth CT.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        network: torch.nn.Module,
        optimizer: Optimizer,
        loss_function: Callable,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable | None = None,
        iteration_update: Callable | None = None,
        inferer: Inferer | None = None,
        postprocessing: Transform | None = None,
        key_train_metric: dict[str, Metric] | None = None,
        additional_metrics: dict[str, Metric] | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        segment_gt_ct: bool | None = None,
        event_names: list[str | EventEnum | type[EventEnum]] | None = None,
        event_to_attr: dict | None = None,
        decollate: bool = True,
        optim_set_to_none: bool = False,
        to_kwargs: dict | None = None,
        amp_kwargs: dict | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=XCTRSPrepareBatch() if prepare_batch is None else prepare_batch,
            iteration_update=iteration_update,
            inferer=inferer,
            postprocessing=postprocessing,
            key_train_metric=key_train_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            train_handlers=train_handlers,
            amp=amp,
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=decollate,
            optim_set_to_none=optim_set_to_none,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )
        if isinstance(loss_function, torch.nn.Module):
            loss_function.to(self.state.device)
        self.segment_gt_ct = bool(getattr(loss_function, "use_rsc", True)) if segment_gt_ct is None else segment_gt_ct
        device_type = self.state.device.type
        self.amp_dtype = self.amp_kwargs.get("dtype", torch.get_autocast_dtype(device_type))
        if self.amp_dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"amp_kwargs['dtype'] must be torch.float16 or torch.bfloat16, got {self.amp_dtype}.")
        self.scaler = torch.amp.GradScaler(device_type, enabled=bool(amp) and self.amp_dtype == torch.float16)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            _check_channels_last_training(unwrap_network(network), self.state.device)
            to_channels_last(unwrap_network(network))

    def run(self) -> None:  # type: ignore[override]
        """Train; calling it again continues from the current state. Keeps ``self.scaler`` across runs."""
        Workflow.run(self)

    def _loss_terms(self, *args: torch.Tensor | None) -> dict[str, torch.Tensor]:
        terms_fn = getattr(self.loss_function, "terms", None)
        if callable(terms_fn):
            return dict(terms_fn(*args))
        return {XCTRSKeys.LOSS: self.loss_function(*args)}

    def _iteration(self, engine: XCTRSTrainer, batchdata: dict[str, Any]) -> dict:  # type: ignore[override]
        """
        One coupled step; see the class docstring.

        Args:
            engine: this trainer.
            batchdata: a collated data dict.

        Returns:
            ``engine.state.output`` (keys of :class:`XCTRSKeys`).

        Raises:
            ValueError: when ``batchdata`` is None or has no CT.
        """
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        xray, ct, label = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        if ct is None:
            raise ValueError("X-CTRSNet training needs the ground-truth CT in the batch.")
        if engine.channels_last:
            xray, ct = to_channels_last(xray), to_channels_last(ct)
        keys = XCTRSKeys
        output: dict[str, Any] = {keys.XRAY: xray, keys.CT: ct}
        if label is not None:
            output[keys.LABEL] = label
        engine.state.output = output

        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with torch.autocast(engine.state.device.type, enabled=engine.amp, **engine.amp_kwargs):
            pred = engine.inferer(xray, engine.network).float()
            pred_ct, pred_seg = pred[:, :1], pred[:, 1:]
            pred_seg_gt = unwrap_network(engine.network).segmenter(ct).float() if engine.segment_gt_ct else None
            output.update({keys.PRED: pred, keys.PRED_CT: pred_ct, keys.PRED_SEG: pred_seg})
            if pred_seg_gt is not None:
                output[keys.PRED_SEG_GT] = pred_seg_gt
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            terms = engine._loss_terms(pred_ct, ct, pred_seg, pred_seg_gt, label)
        loss = terms.pop(keys.LOSS)
        output[keys.LOSS] = loss
        engine.fire_event(IterationEvents.LOSS_COMPLETED)

        engine.scaler.scale(loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.scaler.step(engine.optimizer)
        engine.scaler.update()

        output[keys.LOSS] = loss.detach()
        output.update({f"{keys.LOSS_PREFIX}{name}": value.detach() for name, value in terms.items()})
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
