"""``deltaz train``: flags generated from :class:`~deltaz.engine.config.TrainConfig`, then the loop.

Every config field with a ``metadata["help"]`` is a flag: ``--<field-name>`` (or its ``metadata["flag"]``),
its type from the field's annotation, its choices from the registries (:data:`deltaz.engine.config.CHOICES`:
``deltaz.model.MODELS``, the split modes, …); a ``bool`` field is a switch (``--no-progress`` turns
``progress`` off). Every flag defaults to ``None`` (= not given), so ``--resume`` keeps the resumed run's
settings except the flags given explicitly.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from typing import Any

from deltaz.core.errors import ConfigError, DeltaZError
from deltaz.engine import checkpoint as ckpt
from deltaz.engine import distributed as ddp
from deltaz.engine.config import CHOICES, DEFAULT_CONFIDENCE_WEIGHT, LOSS_WEIGHT_FIELDS, TrainConfig
from deltaz.engine.device import resolve_device
from deltaz.engine.train.loop import train

__all__ = ["config_flags", "config_help", "add_arguments", "run"]


def _value_type(hint: Any) -> tuple[Any, bool]:
    """``(element type, is_list)`` of a field annotation such as ``int | None`` or ``list[float]``."""
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = [a for a in typing.get_args(hint) if a is not type(None)] if is_union else [hint]
    inner = args[0]
    if typing.get_origin(inner) is list:
        return typing.get_args(inner)[0], True
    return inner, False


def _shown_default(defaults: TrainConfig, name: str) -> str:
    """`` (default: …)`` for a flag's help: a loss weight's ``None`` shows the weight it stands for."""
    if name == "device":
        return ""
    if name == "w_confidence":
        return f" (default: {DEFAULT_CONFIDENCE_WEIGHT} with --confidence, else unused)"
    value = getattr(defaults.loss_weights(), name[2:]) if name in LOSS_WEIGHT_FIELDS else getattr(defaults, name)
    return f" (default: {value})"


def config_flags() -> list[tuple[str, str, dict[str, Any]]]:
    """``(flag, field, argparse kwargs)`` for every TrainConfig field that has a help text."""
    hints = typing.get_type_hints(TrainConfig)
    flags = []
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        meta = dict(f.metadata)
        help_text = meta.pop("help", None)
        if not help_text:
            continue
        flag = meta.pop("flag", "--" + f.name.replace("_", "-"))
        kind, is_list = _value_type(hints[f.name])
        if kind is bool:
            const = not getattr(defaults, f.name)
            kwargs = {"action": "store_const", "const": const, "help": help_text}
        else:
            kwargs = {"help": help_text + _shown_default(defaults, f.name), **meta}
            if kind is not str:
                kwargs["type"] = kind
            if is_list:
                kwargs.setdefault("nargs", "+")
            if f.name in CHOICES:
                kwargs["choices"] = list(CHOICES[f.name])
        flags.append((flag, f.name, kwargs))
    return flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``deltaz train`` (see the module docstring) and ``--resume``."""
    for flag, field, kwargs in config_flags():
        parser.add_argument(flag, dest=field, default=None, **kwargs)
    parser.add_argument(
        "--resume", nargs="?", const="latest", default=None, metavar="PATH",
        help="continue a run: alone = <checkpoint-dir>/last.pt; or a checkpoint file/folder. "
             "Settings come from the checkpoint unless given as flags",
    )


def run(args: argparse.Namespace) -> int:
    """``deltaz train``: build the config from the flags (and the resumed run), train, print a summary.
    A bad option or dataset prints one ``deltaz train: error: ...`` line and returns 1."""
    try:
        return _run(args)
    except DeltaZError as error:
        print(f"deltaz train: error: {error}", file=sys.stderr)
        return 1


def _config_from(args: argparse.Namespace) -> TrainConfig:
    """The flags given, over the resumed checkpoint's config (``--resume``) or the defaults."""
    given = {f: getattr(args, f) for _, f, _ in config_flags() if getattr(args, f, None) is not None}
    base = TrainConfig(data_root="")
    if args.resume is not None:
        path = ckpt.resolve_resume_path(args.resume, given.get("checkpoint_dir", base.checkpoint_dir))
        base = TrainConfig.from_dict(ckpt.load_checkpoint(path).get("config") or {})
        args.resume = str(path)
    data = {**base.to_dict(), **given}
    if not data.get("data_root"):
        raise ConfigError("--data-root is required: a folder of train-ready scans (see `deltaz parse`)")
    return TrainConfig.from_dict(data)


def _run(args: argparse.Namespace) -> int:
    config = _config_from(args)
    device = resolve_device(config.device)
    config.device = str(device)
    print(f"deltaz train: device {device}", file=sys.stderr)
    result = train(config, resume=args.resume)
    if ddp.env_world_size() <= 1 or int(os.environ.get("RANK", "0")) == 0:
        metrics = result["final_metrics"]
        print(f"stopped by {result['stopped_by']} after {result['epochs_completed']} epoch(s), "
              f"{result['steps']} step(s), {result['elapsed_s']:.1f} s")
        if metrics:
            print(f"validation MAE: initial {metrics['mae_mm_init']:.3f} mm -> refined "
                  f"{metrics['mae_mm_refined']:.3f} mm; within 1 mm: {metrics['acc_1mm_init']:.1f}% -> "
                  f"{metrics['acc_1mm_refined']:.1f}%")
        print(f"checkpoints: {result['last_checkpoint']} (best: {result['best_checkpoint']}); "
              f"TensorBoard: tensorboard --logdir {result['log_dir']}")
    return 0


def config_help(name: str) -> str:
    """The help text of TrainConfig field ``name`` (its ``metadata["help"]``), for other commands' flags."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(TrainConfig)}[name]
