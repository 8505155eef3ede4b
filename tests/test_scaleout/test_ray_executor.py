"""The Ray executor on a local two-CPU Ray instance: same records, same results as one process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.cli import main
from guard.data import TextDataset, load_eval_data
from guard.errors import ConfigError
from guard.executors import RayExecutor


@pytest.fixture(scope="module")
def executor() -> Iterator[RayExecutor]:
    with RayExecutor(workers=2) as ray_executor:
        yield ray_executor


def _mixed_data(model_dir: Path) -> TextDataset:
    """Test texts the tiny model gets right, then some it gets wrong: attacks and skips."""
    from guard.models.classifier import HFClassifier

    data = load_eval_data("bundled")
    predicted = HFClassifier.from_pretrained(model_dir).predict(data.texts)
    right = [i for i, (p, y) in enumerate(zip(predicted, data.labels, strict=True)) if p == y]
    wrong = [i for i in range(len(data)) if i not in set(right)]
    order = right[:6] + wrong[:2]
    return TextDataset.from_rows([data.texts[i] for i in order],
                                 [data.labels[i] for i in order], source="bundled:mixed")


def test_attack_on_ray_gives_the_single_process_records(tiny_classifier_dir: Path,
                                                        executor: RayExecutor) -> None:
    from attacks.runner import run_attack

    data = _mixed_data(tiny_classifier_dir)
    one = run_attack(tiny_classifier_dir, data, "deepwordbug", n=8, seed=3, progress=False)
    sharded = run_attack(tiny_classifier_dir, data, "deepwordbug", n=8, seed=3,
                         progress=False, executor=executor)
    assert sharded.records == one.records
    assert {r.status for r in one.records} >= {"successful", "skipped"}  # real attacks ran


def test_sharded_classifier_matches_the_local_one(tiny_classifier_dir: Path,
                                                  executor: RayExecutor) -> None:
    import numpy as np

    from eval_suites.runner import run_suites
    from guard.models.classifier import HFClassifier
    from guard.models.sharded import ShardedClassifier

    local = HFClassifier.from_pretrained(tiny_classifier_dir, batch_size=16)
    sharded = ShardedClassifier(HFClassifier.from_pretrained(tiny_classifier_dir, batch_size=16),
                                executor)
    data = load_eval_data("bundled", allowed_labels=local.labels)
    texts = list(data.texts)
    assert len(texts) > 4 * local.batch_size  # many batches, so both workers get some
    np.testing.assert_allclose(sharded.predict_proba(texts), local.predict_proba(texts),
                               atol=1e-6)
    assert sharded.predict(texts) == local.predict(texts)
    [on_ray] = run_suites(sharded, data, ["accuracy"], seed=0)
    [here] = run_suites(local, data, ["accuracy"], seed=0)
    assert on_ray.metrics == here.metrics


def test_guard_eval_and_attack_cli_with_ray(tiny_classifier_dir: Path, tmp_path: Path,
                                            executor: RayExecutor,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # the module's executor started Ray: the CLI's executors reuse that instance, once this
    # one has handed back its workers' CPUs
    executor.release()
    # two suites on Ray: the inference replicas make way for the attack workers
    args = ["--model", str(tiny_classifier_dir), "--suite", "accuracy,robustness", "--quiet",
            "--set", "robustness.n=6", "--set", 'robustness.recipes=["pruthi"]']
    assert main(["eval", *args, "--out", str(tmp_path / "local")]) == 0
    assert main(["eval", *args, "--out", str(tmp_path / "ray"), "--executor", "ray",
                 "--workers", "2"]) == 0
    suites = [json.loads((tmp_path / name / "results.json").read_text())["suites"]
              for name in ("local", "ray")]
    assert [s["suite"] for s in suites[1]] == ["accuracy", "robustness"]
    for local_suite, ray_suite in zip(*suites, strict=True):
        assert local_suite["metrics"] == ray_suite["metrics"]
    attack = ["attack", "--recipe", "pruthi", "--model", str(tiny_classifier_dir), "--n", "6",
              "--quiet"]
    assert main([*attack, "--out", str(tmp_path / "a1")]) == 0
    assert main([*attack, "--out", str(tmp_path / "a2"), "--executor", "ray"]) == 0
    assert (tmp_path / "a1" / "records.jsonl").read_bytes() == \
        (tmp_path / "a2" / "records.jsonl").read_bytes()
    capsys.readouterr()


def test_executor_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attack", "--recipe", "pruthi", "--out", str(tmp_path), "--address",
                 "auto"]) == 2
    assert "--address needs --executor ray" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="workers >= 1"):
        RayExecutor(workers=0)
