"""``guard train``'s flags, generated from ``TrainConfig``'s fields (no training here)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from guard.cli import build_parser, main
from guard.errors import ConfigError

# Every flag `guard train` had before the flags were generated: none may go.
FLAGS_BEFORE = (
    "--data", "--model", "--out", "--config", "--text-column", "--label-column", "--epochs",
    "--patience", "--batch-size", "--learning-rate", "--max-length", "--mode", "--resume",
    "--pooling", "--epsilon", "--delta", "--noise-multiplier", "--max-grad-norm",
    "--dp-trainable", "--dp-clipping", "--dp-head-init", "--dp-centroid-noise", "--accountant",
    "--adv-recipe", "--adv-fraction", "--adv-clean-epochs", "--adv-every", "--adv-query-budget",
    "--word-recognition", "--seed", "--device", "--trust-remote-code", "--quiet",
)


def _args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", "--out", "unused", *flags])


def test_help_lists_every_earlier_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    listed = set(capsys.readouterr().out.replace(",", " ").replace("[", " ").split())
    assert [flag for flag in FLAGS_BEFORE if flag not in listed] == []
    # and every setting of TrainConfig has one now
    assert {"--weight-decay", "--warmup-ratio", "--adv-keep", "--no-adv-keep",
            "--dp-secure-mode", "--checkpoint-every", "--revision", "--min-delta"} <= listed


def test_flag_values_reach_the_config() -> None:
    from guard.cli.train import config_from_args

    config = config_from_args(_args(
        "--mode", "dp", "--noise-multiplier", "1.5", "--delta", "1e-6", "--accountant", "rdp",
        "--max-grad-norm", "0.5", "--dp-head-init", "random", "--weight-decay", "0.05",
        "--no-adv-keep", "--trust-remote-code", "--adv-query-budget", "30"))
    assert (config.mode, config.dp_epsilon, config.dp_noise_multiplier) == ("dp", None, 1.5)
    assert (config.dp_delta, config.dp_accountant, config.dp_max_grad_norm) == \
        (1e-6, "rdp", 0.5)
    assert (config.dp_head_init, config.weight_decay, config.adv_keep) == ("random", 0.05, False)
    assert config.trust_remote_code is True and config.adv_query_budget == 30
    # flags not given keep the mode's defaults
    assert (config.epochs, config.batch_size, config.pooling) == (20, 128, "mean")
    assert config_from_args(_args("--epsilon", "4", "--mode", "dp")).dp_epsilon == 4.0
    with pytest.raises(ConfigError, match="not both"):
        config_from_args(_args("--epsilon", "4", "--noise-multiplier", "1"))


def test_flags_beat_the_config_file_which_beats_the_defaults(tmp_path: Path) -> None:
    from guard.cli.train import config_from_args

    toml = tmp_path / "train.toml"
    toml.write_text('epochs = 4\nbatch_size = 8\nmode = "adversarial"\n')
    config = config_from_args(_args("--config", str(toml), "--epochs", "6"))
    assert (config.epochs, config.batch_size, config.mode) == (6, 8, "adversarial")
    assert config.word_recognition == "train"  # the adversarial mode's default


def test_choices_and_types_come_from_the_annotations(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    for flags in (["--mode", "private"], ["--dp-clipping", "fast"], ["--epochs", "many"]):
        with pytest.raises(SystemExit):
            _args(*flags)
        assert "invalid" in capsys.readouterr().err


def test_resume_refuses_setting_flags_but_takes_the_device(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "ck")
    for flags in (["--weight-decay", "0.1"], ["--epsilon", "4"], ["--config", "x.toml"],
                  ["--no-adv-keep"]):
        assert main(["train", "--out", out, "--resume", *flags]) == 2
        assert f"drop {flags[0]}" in capsys.readouterr().err
    assert main(["train", "--out", out, "--resume", "--device", "cpu", "--quiet"]) == 2
    assert "no resumable training state" in capsys.readouterr().err
