"""``guard train``: fine-tune an intent classifier and write a checkpoint.

Every setting of :class:`training.config.TrainConfig` is a flag, generated from the field: its
type from the annotation, ``choices`` from a ``Literal``, the help from the field's description
and default. A flag left out keeps the value of the ``--config`` file or the (mode-dependent)
default, so every generated flag defaults to ``None``. ``--out``, ``--config``, ``--resume`` and
``--quiet`` are the command's own.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.config import TrainConfig

#: Fields whose flag is not ``--field-name`` (the spellings of earlier releases).
FLAG_NAMES = {"dp_epsilon": "epsilon", "dp_delta": "delta",
              "dp_noise_multiplier": "noise-multiplier", "dp_max_grad_norm": "max-grad-norm",
              "dp_accountant": "accountant"}
#: Fields ``--resume`` accepts: where the run goes on, not how it trains.
RESUMABLE_FIELDS = ("device",)


def config_flags() -> dict[str, str]:
    """Field name -> its flag (``--epochs``), for every field of ``TrainConfig``."""
    from training.config import TrainConfig

    return {name: "--" + FLAG_NAMES.get(name, name.replace("_", "-"))
            for name in TrainConfig.model_fields}


def _default_note(name: str, default: Any) -> str:
    from guard.cli.options import shown_default as shown
    from training.config import MODE_DEFAULTS

    if name in MODE_DEFAULTS["clean"]:
        return (f"default: {shown(MODE_DEFAULTS['clean'][name])}; "
                f"{shown(MODE_DEFAULTS['private'][name])} in the dp modes")
    if name in ("word_recognition", "dp_head_init"):
        return "default: by mode, as above"
    return f"default: {shown(default)}"


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` field (see the module docstring)."""
    from guard.cli.options import add_model_flags
    from training.config import TrainConfig

    add_model_flags(parser, TrainConfig, config_flags(), default_note=_default_note)


def add_parser(commands: Any) -> None:
    """Register the ``train`` subcommand."""
    parser = commands.add_parser(
        "train",
        help="fine-tune an intent classifier (clean, adversarial, dp or adversarial+dp)",
        description=(
            "Fine-tune a sequence classifier with dynamic padding, a fixed seed and validation-"
            "based early stopping. Writes safetensors weights, the tokenizer and manifest.json "
            "(data hash, config, package versions, seed, metrics, privacy budget spent, attack "
            "rounds) into --out. Settings: defaults < --config file < flags. After every epoch "
            "a resumable state is kept in OUT.resume; --resume continues from it. Data-"
            "parallel on N processes or GPUs: torchrun --nproc-per-node N -m guard train ... "
            "(--batch-size stays the global batch; dp modes account for the whole run)."
        ),
    )
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--config", default=None, help="TOML file with training settings")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run that was writing --out, with its own "
                             "settings (from OUT.resume); the result equals an uninterrupted run")
    add_config_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Train and print where the checkpoint went and how well it did."""
    from guard.atomic import ensure_writable_path, removing_on_failure

    # --out before any work: the checkpoint and OUT.resume are written beside it, in its
    # parent folder; parents made for it go again if the run fails.
    with removing_on_failure(ensure_writable_path(args.out, flag="--out", folder=True)):
        return _resume(args) if args.resume else _train(args)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` the flags ask for: defaults < ``--config`` file < flags.

    ``--noise-multiplier`` trains with that fixed noise instead of the budget.

    Raises:
        ConfigError: For ``--epsilon`` with ``--noise-multiplier``, or an invalid setting.
    """
    from guard.config import build_model
    from guard.errors import ConfigError
    from training.config import TrainConfig

    given = {name: getattr(args, name) for name in config_flags()}
    noise = given.pop("dp_noise_multiplier")
    config = TrainConfig.from_sources(args.config, **given)
    if noise is not None:
        if given["dp_epsilon"] is not None:
            raise ConfigError("pass --epsilon (a budget) or --noise-multiplier, not both")
        config = build_model(TrainConfig, {**config.model_dump(), "dp_epsilon": None,
                                           "dp_noise_multiplier": noise},
                             what="training config")
    return config


def _train(args: argparse.Namespace) -> int:
    from training.pipeline import fine_tune

    return _report(fine_tune(config_from_args(args), out=args.out, progress=not args.quiet))


def _resume(args: argparse.Namespace) -> int:
    from guard.errors import ConfigError
    from training.pipeline import fine_tune, resume_config

    # with --resume the interrupted run's own settings apply: a setting flag is refused
    given = ["--config"] if args.config is not None else []
    given += [f"--no-{flag[2:]}" if getattr(args, name) is False else flag
              for name, flag in config_flags().items()
              if name not in RESUMABLE_FIELDS and getattr(args, name) is not None]
    if given:
        raise ConfigError(f"--resume continues with the interrupted run's own settings; drop "
                          f"{', '.join(given)}")
    config = resume_config(args.out)
    if args.device is not None:
        config = config.model_copy(update={"device": args.device})
    return _report(fine_tune(config, out=args.out, progress=not args.quiet, resume=True))


def _report(result: Any) -> int:
    from training.distributed import context_from_environment

    if not context_from_environment().is_main:
        return 0  # under torchrun, rank 0 reports for everyone
    metrics = result.manifest["metrics"]
    print(f"checkpoint: {result.checkpoint}")
    print(f"validation accuracy: {metrics['validation']['accuracy']:.4f} "
          f"(best epoch {metrics['validation']['best_epoch']} of {metrics['epochs_run']})")
    if metrics["test"]:
        print(f"test accuracy: {metrics['test']['accuracy']:.4f} "
              f"(n={int(metrics['test']['n'])})")
    print(f"train time: {metrics['train_seconds']:.1f} s")
    privacy = result.manifest.get("privacy")
    if privacy:
        spent = "unbounded (no noise)" if privacy["epsilon"] is None else \
            f"{privacy['epsilon']:.3f}"
        print(f"privacy: epsilon {spent} at delta {privacy['delta']:g} "
              f"(noise {privacy['noise_multiplier']:.3f}, clip {privacy['max_grad_norm']:g}, "
              f"{privacy['steps']} steps, {privacy['accountant']} accountant)")
    return 0
