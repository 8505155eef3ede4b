"""``guard train``: fine-tune an intent classifier and write a checkpoint."""

from __future__ import annotations

import argparse
from typing import Any


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
    parser.add_argument("--data", default=None,
                        help="'bundled' (default), a folder with train/validation/test files, or "
                             "one CSV/JSONL/parquet file (split 80/10/10 deterministically)")
    parser.add_argument("--model", default=None,
                        help="backbone: 'default' (all-MiniLM-L6-v2, shipped), a folder or a "
                             "hub id")
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--config", default=None, help="TOML file with training settings")
    parser.add_argument("--text-column", default=None, help="text column of user data (text)")
    parser.add_argument("--label-column", default=None, help="label column of user data (label)")
    parser.add_argument("--epochs", type=int, default=None, help="most epochs (8)")
    parser.add_argument("--patience", type=int, default=None,
                        help="epochs without validation gain before stopping (2)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (16)")
    parser.add_argument("--learning-rate", type=float, default=None, help="peak learning rate")
    parser.add_argument("--max-length", type=int, default=None, help="truncate to N tokens (64)")
    parser.add_argument("--mode", choices=("clean", "adversarial", "dp", "adversarial+dp"),
                        default=None,
                        help="clean (default); adversarial: attack part of the training data "
                             "each epoch and train on the successes too (attacks extra); dp: "
                             "DP-SGD with Opacus (dp extra); adversarial+dp: both, each "
                             "adversarial example counted with the record it came from. The "
                             "private modes default to 20 epochs, batch 128, learning rate 3e-2 "
                             "and mean pooling")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run that was writing --out, with its own "
                             "settings (from OUT.resume); the result equals an uninterrupted run")
    parser.add_argument("--pooling", choices=("cls", "mean"), default=None,
                        help="sentence representation the head reads (cls; mean in dp modes)")
    parser.add_argument("--epsilon", type=float, default=None, help="dp: privacy budget (8)")
    parser.add_argument("--delta", type=float, default=None, help="dp: delta, below 1/N (1e-5)")
    parser.add_argument("--noise-multiplier", type=float, default=None,
                        help="dp: a fixed noise multiplier instead of a budget; epsilon is "
                             "then reported, not targeted")
    parser.add_argument("--max-grad-norm", type=float, default=None,
                        help="dp: per-sample clip norm (1.0)")
    parser.add_argument("--dp-trainable", choices=("head", "last-layer", "all"), default=None,
                        help="dp: what DP-SGD trains (head)")
    parser.add_argument("--dp-clipping", choices=("ghost", "hooks"), default=None,
                        help="dp: ghost clipping (default, faster) or Opacus per-sample hooks")
    parser.add_argument("--dp-head-init", choices=("centroid-span", "centroids", "random"),
                        default=None,
                        help="dp: start the head from the class centroids of the training "
                             "embeddings, released with Gaussian noise and counted in epsilon, "
                             "and train only their K x K mixing (centroid-span, the default "
                             "with mean pooling) or the whole head (centroids); or start "
                             "randomly")
    parser.add_argument("--dp-centroid-noise", type=float, default=None,
                        help="dp: noise multiplier of the centroid release (default: calibrated "
                             "to spend 5/6 of the budget alone; 0.7 at epsilon 8, delta 1e-5)")
    parser.add_argument("--accountant", choices=("prv", "rdp"), default=None,
                        help="dp: privacy accountant (prv)")
    parser.add_argument("--adv-recipe", default=None, help="attack recipe (deepwordbug)")
    parser.add_argument("--adv-fraction", type=float, default=None,
                        help="share of training examples attacked per round (0.2)")
    parser.add_argument("--adv-clean-epochs", type=int, default=None,
                        help="clean epochs before the first attack round (1)")
    parser.add_argument("--adv-every", type=int, default=None,
                        help="epochs between attack rounds (1)")
    parser.add_argument("--adv-query-budget", type=int, default=None,
                        help="most model queries per attacked example (200)")
    parser.add_argument("--word-recognition", choices=("off", "public", "train"), default=None,
                        help="correct misspelled words before the model reads them, in "
                             "training and in every later use of the checkpoint (a defence "
                             "against typo attacks such as DeepWordBug): look words up in the "
                             "tokenizer's vocabulary (public) or also in the training texts' "
                             "words (train; the checkpoint then lists them). Default: train "
                             "for adversarial, public for adversarial+dp, off otherwise; "
                             "private modes allow off or public")
    parser.add_argument("--seed", type=int, default=None, help="random seed (0)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="run code shipped with a hub model (off by default)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Train and print where the checkpoint went and how well it did."""
    from guard.atomic import ensure_writable_path, removing_on_failure

    # --out before any work: the checkpoint and OUT.resume are written beside it, in its
    # parent folder; parents made for it go again if the run fails.
    with removing_on_failure(ensure_writable_path(args.out, flag="--out", folder=True)):
        return _resume(args) if args.resume else _train(args)


def _train(args: argparse.Namespace) -> int:
    from guard.config import build_model
    from guard.errors import ConfigError
    from training.clean import fine_tune
    from training.config import TrainConfig

    config = TrainConfig.from_sources(
        args.config,
        data=args.data, model=args.model, text_column=args.text_column,
        label_column=args.label_column, epochs=args.epochs, patience=args.patience,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        max_length=args.max_length, seed=args.seed, device=args.device, mode=args.mode,
        adv_recipe=args.adv_recipe, adv_fraction=args.adv_fraction,
        adv_clean_epochs=args.adv_clean_epochs, adv_every=args.adv_every,
        adv_query_budget=args.adv_query_budget, dp_epsilon=args.epsilon, dp_delta=args.delta,
        dp_max_grad_norm=args.max_grad_norm, dp_trainable=args.dp_trainable,
        dp_clipping=args.dp_clipping, dp_accountant=args.accountant, pooling=args.pooling,
        dp_head_init=args.dp_head_init, dp_centroid_noise=args.dp_centroid_noise,
        word_recognition=args.word_recognition, trust_remote_code=args.trust_remote_code,
    )
    if args.noise_multiplier is not None:
        if args.epsilon is not None:
            raise ConfigError("pass --epsilon (a budget) or --noise-multiplier, not both")
        config = build_model(TrainConfig, {**config.model_dump(), "dp_epsilon": None,
                                           "dp_noise_multiplier": args.noise_multiplier},
                             what="training config")
    return _report(fine_tune(config, out=args.out, progress=not args.quiet))


# Flags that are settings: with --resume the interrupted run's own settings apply instead.
_SETTING_FLAGS = ("data", "model", "config", "text_column", "label_column", "epochs", "patience",
                  "batch_size", "learning_rate", "max_length", "mode", "pooling", "epsilon",
                  "delta", "noise_multiplier", "max_grad_norm", "dp_trainable", "dp_clipping",
                  "accountant", "dp_head_init", "dp_centroid_noise", "adv_recipe",
                  "adv_fraction", "adv_clean_epochs", "adv_every", "adv_query_budget",
                  "word_recognition", "seed", "trust_remote_code")


def _resume(args: argparse.Namespace) -> int:
    from guard.errors import ConfigError
    from training.clean import fine_tune, resume_config

    given = [f"--{name.replace('_', '-')}" for name in _SETTING_FLAGS
             if getattr(args, name) is not None]
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
