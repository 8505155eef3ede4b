"""Data-parallel training with two torchrun processes on CPU (gloo), against one process.

The tiny BERT here has no dropout, so two processes splitting each global batch must train the
same model as one process taking it whole (up to the order of floating-point sums), and DP-SGD
must draw the same batches and noise and report the same epsilon.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from guard.errors import ConfigError
from training.config import TrainConfig
from training.pipeline import TrainResult, fine_tune

WORKER = Path(__file__).with_name("torchrun_worker.py")


def _torchrun(config: TrainConfig, out: Path, *extra: str,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    """Train with two processes through the worker script; the run's output is returned."""
    spec = out.with_name(out.name + ".config.json")
    spec.write_text(config.model_dump_json())
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(WORKER), str(spec), str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"torchrun failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _max_weight_difference(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def _one_process(config: TrainConfig, out: Path) -> TrainResult:
    return fine_tune(config, out=out, progress=False)


@pytest.fixture(scope="module")
def clean_config(no_dropout_bert_dir: Path) -> TrainConfig:
    return TrainConfig(model=str(no_dropout_bert_dir), epochs=3, patience=3, batch_size=32,
                       learning_rate=3e-3, max_length=32, device="cpu")


@pytest.fixture(scope="module")
def clean_two_processes(tmp_path_factory: pytest.TempPathFactory,
                        clean_config: TrainConfig) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "clean"
    _torchrun(clean_config, out)
    return out


def test_two_processes_train_the_one_process_model(tmp_path: Path, clean_config: TrainConfig,
                                                   clean_two_processes: Path) -> None:
    single = _one_process(clean_config, tmp_path / "single")
    assert _manifest(clean_two_processes)["processes"] == 2
    assert single.manifest["processes"] == 1
    assert _max_weight_difference(clean_two_processes, single.checkpoint) < 1e-4
    two = _manifest(clean_two_processes)["history"]
    for sharded, whole in zip(two, single.manifest["history"], strict=True):
        assert sharded["examples"] == whole["examples"] == 840  # each row once per epoch
        assert sharded["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-5)
        assert sharded["val_accuracy"] == pytest.approx(whole["val_accuracy"])


def test_two_process_run_resumes_where_it_stopped(tmp_path: Path, clean_config: TrainConfig,
                                                  clean_two_processes: Path) -> None:
    from training.resume import resume_dir_for

    out = tmp_path / "cut"
    crashed = _torchrun(clean_config, out, "--interrupt-at", "2", check=False)
    assert crashed.returncode != 0 and not out.exists()
    assert json.loads((resume_dir_for(out) / "state.json").read_text())["world_size"] == 2
    with pytest.raises(ConfigError, match="from 2 process"):
        fine_tune(clean_config, out=out, progress=False, resume=True)
    _torchrun(clean_config, out, "--resume")
    assert _manifest(out)["metrics"]["resumed_at_epoch"] == 2
    assert _max_weight_difference(out, clean_two_processes) == 0.0


@pytest.mark.parametrize("clipping", ["ghost", "hooks"])
def test_two_process_dp_reports_the_expected_epsilon(tmp_path: Path, no_dropout_bert_dir: Path,
                                                     clipping: str) -> None:
    from opacus.accountants import PRVAccountant

    config = TrainConfig(model=str(no_dropout_bert_dir), mode="dp", epochs=2, max_length=32,
                         dp_epsilon=8.0, dp_delta=1e-4, dp_clipping=clipping, device="cpu")
    _torchrun(config, tmp_path / "two")
    two_manifest = _manifest(tmp_path / "two")
    single_manifest = _one_process(config, tmp_path / "one").manifest
    two, single = two_manifest["privacy"], single_manifest["privacy"]

    assert two["processes"] == 2 and single["processes"] == 1
    steps_per_epoch = -(-840 // 128)  # Poisson batches of expected size 128 over 840 records
    assert two["steps"] == 2 * steps_per_epoch
    assert two["sample_rate"] == pytest.approx(1 / steps_per_epoch)
    accountant = PRVAccountant()
    # the head starts from privately released class centroids: one Gaussian mechanism first
    assert two["head_init"]["method"] == "centroid-span"
    accountant.history = [(two["head_init"]["noise_multiplier"], 1.0, 1),
                          (two["noise_multiplier"], two["sample_rate"], two["steps"])]
    with np.errstate(divide="ignore"):  # PRV takes log(1 - q), -inf for the full-data release
        expected = accountant.get_epsilon(delta=1e-4)
    assert two["epsilon"] == pytest.approx(expected, rel=1e-9)
    assert two["epsilon"] == pytest.approx(8.0, abs=0.05)  # the budget, spent
    for key in ("epsilon", "noise_multiplier", "sample_rate", "steps"):
        assert two[key] == single[key], key
    # the same global batches and the same noise, added once, by rank 0
    assert _max_weight_difference(tmp_path / "two", tmp_path / "one") < 1e-5
    # and the epochs' figures cover the whole global batches, not rank 0's share of them
    for sharded, whole in zip(two_manifest["history"], single_manifest["history"], strict=True):
        assert sharded["examples"] == whole["examples"]
        assert sharded["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-4)


def test_two_process_adversarial_training_shares_the_attacks(tmp_path: Path,
                                                             no_dropout_bert_dir: Path) -> None:
    config = TrainConfig(model=str(no_dropout_bert_dir), mode="adversarial", epochs=6,
                         patience=6, batch_size=32, learning_rate=3e-3, max_length=32,
                         adv_clean_epochs=4, adv_fraction=0.1, device="cpu")
    _torchrun(config, tmp_path / "two")
    two = _manifest(tmp_path / "two")
    single = _one_process(config, tmp_path / "one").manifest

    rounds = two["adversarial"]["rounds"]
    assert [r["epoch"] for r in rounds] == [5, 6]
    assert rounds[0]["successful"] > 0  # the pool really grew
    assert rounds == single["adversarial"]["rounds"]
    assert [h["examples"] for h in two["history"]] == [h["examples"] for h in single["history"]]
    assert _max_weight_difference(tmp_path / "two", tmp_path / "one") < 1e-2


def test_shared_poisson_sampler_splits_opacus_global_batches() -> None:
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    from training.distributed import DistributedContext, SharedPoissonBatchSampler

    n, rate = 50, 0.06  # small batches: some local batches are empty
    reference = list(UniformWithReplacementSampler(
        num_samples=n, sample_rate=rate, generator=torch.Generator().manual_seed(3)))
    shares = [list(SharedPoissonBatchSampler(
        num_samples=n, sample_rate=rate, context=DistributedContext(rank=r, world_size=2),
        generator=torch.Generator().manual_seed(3))) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == len(reference) == int(1 / rate)
    for whole, first, second in zip(reference, *shares, strict=True):
        assert sorted(first + second) == whole and not set(first) & set(second)
    assert any(not batch for share in shares for batch in share)  # every step is taken


def test_malformed_torchrun_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.distributed import context_from_environment

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="inconsistent torchrun environment"):
        context_from_environment()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ConfigError, match="malformed"):
        context_from_environment()
    monkeypatch.setenv("RANK", "1")
    assert context_from_environment().shard(list(range(5))) == [1, 3]
