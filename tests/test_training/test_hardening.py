"""Resume, mean pooling, ghost clipping and the adversarial+dp mode, on tiny real models."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from guard.data import TextDataset, load_splits
from guard.errors import ConfigError
from training.callbacks import TrainerCallback, TrainerControl, TrainerState
from training.config import TrainConfig
from training.pipeline import fine_tune
from training.resume import resume_dir_for


class _Interrupt(TrainerCallback):
    """Simulates a crash (Ctrl-C) at the start of an epoch."""

    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def on_epoch_begin(self, state: TrainerState, control: TrainerControl) -> None:
        if state.epoch == self.at_epoch:
            raise KeyboardInterrupt


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


@pytest.mark.parametrize("mode", ["clean", "dp"])
def test_resume_gives_the_same_model_as_an_uninterrupted_run(
        tmp_path: Path, tiny_bert_dir: Path, mode: str) -> None:
    extra = {"dp_epsilon": None, "dp_noise_multiplier": 1.0, "batch_size": 64,
             "dp_accountant": "rdp"} if mode == "dp" else {"batch_size": 32}
    config = TrainConfig(model=str(tiny_bert_dir), mode=mode, epochs=3, patience=5,
                         learning_rate=3e-3, max_length=24, **extra)
    whole = fine_tune(config, out=tmp_path / "whole", progress=False)
    assert not resume_dir_for(whole.checkpoint).exists()  # removed once the run completed

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        fine_tune(config, out=out, progress=False, callbacks=(_Interrupt(at_epoch=2),))
    assert not out.exists() and resume_dir_for(out).is_dir()
    resumed = fine_tune(config, out=out, progress=False, resume=True)

    _assert_same_weights(whole.checkpoint, resumed.checkpoint)
    assert resumed.manifest["metrics"]["resumed_at_epoch"] == 2
    untimed = [[{k: v for k, v in epoch.items() if k != "seconds"}
                for epoch in m.manifest["history"]] for m in (whole, resumed)]
    assert untimed[0] == untimed[1]
    if mode == "dp":
        assert resumed.manifest["privacy"]["epsilon"] == whole.manifest["privacy"]["epsilon"]
        assert resumed.manifest["privacy"]["steps"] == whole.manifest["privacy"]["steps"]


def test_resume_refuses_other_settings_and_missing_state(tmp_path: Path,
                                                         tiny_bert_dir: Path) -> None:
    config = TrainConfig(model=str(tiny_bert_dir), epochs=3, batch_size=64, max_length=24)
    with pytest.raises(ConfigError, match="no resumable training state"):
        fine_tune(config, out=tmp_path / "m", progress=False, resume=True)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(config, out=tmp_path / "m", progress=False, callbacks=(_Interrupt(1),))
    other = config.model_copy(update={"learning_rate": 5e-4})
    with pytest.raises(ConfigError, match="learning_rate"):
        fine_tune(other, out=tmp_path / "m", progress=False, resume=True)


def test_mean_pooled_checkpoint_loads_through_the_auto_classes(tmp_path: Path,
                                                               tiny_bert_dir: Path) -> None:
    from guard.models.classifier import HFClassifier

    config = TrainConfig(model=str(tiny_bert_dir), pooling="mean", epochs=1, batch_size=64,
                         max_length=24, learning_rate=3e-3)
    folder = fine_tune(config, out=tmp_path / "mean", progress=False).checkpoint
    assert json.loads((folder / "config.json").read_text())["model_type"] == "guard-mean-bert"
    assert not any(k.startswith("bert.pooler") for k in _weights(folder))
    loaded = HFClassifier.from_pretrained(folder)
    assert type(loaded.model).__name__ == "MeanPooledBertForSequenceClassification"
    texts = ["where is the museum", "book a table for two please"]
    # padding must not change the mean: each text alone equals the padded batch
    batch = loaded.logits(texts)
    alone = [loaded.logits([t])[0] for t in texts]
    assert batch == pytest.approx(torch.tensor(alone).numpy(), abs=1e-5)


def test_mean_pooling_refuses_non_bert_backbones(tiny_gpt2_dir: Path) -> None:
    from guard.models.pooled import MeanPooledBackbone

    with pytest.raises(ValueError, match="supports BERT backbones"):
        MeanPooledBackbone.from_pretrained(str(tiny_gpt2_dir), num_labels=2)


def test_private_adversarial_choice_depends_only_on_the_record() -> None:
    from training.adversarial import AdversarialAugmentationCallback

    train = load_splits("bundled").train
    callback = AdversarialAugmentationCallback(TrainConfig(mode="adversarial+dp",
                                                           adv_fraction=0.3))
    chosen, seeds = callback._choose(3, train, list(range(len(train))))
    # drop one record: every other record keeps its own choice and seed
    fewer = TextDataset.from_rows(train.texts[1:], train.labels[1:], source="fewer")
    chosen2, seeds2 = callback._choose(3, fewer, list(range(len(fewer))))
    assert seeds is not None and seeds2 is not None
    first = {train.texts[i]: s for i, s in zip(chosen, seeds, strict=True) if i != 0}
    second = {fewer.texts[i]: s for i, s in zip(chosen2, seeds2, strict=True)}
    assert first == second
    assert 0.2 < len(chosen) / len(train) < 0.4


def test_adversarial_rows_fold_into_their_records_gradient(tiny_classifier_dir: Path) -> None:
    """Each record's per-sample gradient is the mean over its own rows: sensitivity stays C."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.privacy import PrivateTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    # no dropout (attention dropout is functional): the reference passes see the same network
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_classifier_dir, attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    splits = load_splits("bundled")
    config = TrainConfig(model=str(tiny_classifier_dir), mode="adversarial+dp", epochs=1,
                         batch_size=8, max_length=24, dp_trainable="last-layer",
                         dp_epsilon=None, dp_noise_multiplier=1.0, pooling="cls")
    reference = copy.deepcopy(model)
    trainer = PrivateTrainer(model, tokenizer, train=splits.train,
                             validation=splits.validation, config=config)
    trainer._setup()
    assert trainer.clipping == "hooks"
    idx = [5, 9, 20]
    trainer.state.augmented = TextDataset.from_rows(
        ["wehre is the musuem", "b00k a tabel", "wher is teh museum"],
        [splits.train.labels[9], splits.train.labels[20], splits.train.labels[9]], source="adv")
    trainer.state.augmented_sources = [9, 20, 9]
    texts, labels, groups = trainer._rows(idx)
    assert groups == [0, 1, 2, 1, 2, 1]
    dp = trainer._wired()
    out = dp.model(**trainer._encode(texts)).logits
    dp.criterion(out, trainer._targets(labels)).backward()
    trainer._fold_into_records(groups, len(idx))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = dict(reference.named_parameters())
    for slot in range(len(idx)):
        rows = [r for r, g in enumerate(groups) if g == slot]
        reference.zero_grad()
        logits = reference(**trainer._encode([texts[r] for r in rows])).logits
        torch.nn.functional.cross_entropy(logits, trainer._targets([labels[r] for r in rows])
                                          ).backward()
        for name, parameter in zip(names, dp.optimizer.params, strict=True):
            expected = params[name].grad
            assert expected is not None
            assert parameter.grad_sample[slot] == pytest.approx(expected, abs=1e-5), name


def test_adversarial_dp_mode_runs_accounts_and_shows_epsilon(
        tmp_path: Path, tiny_classifier_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = {"model": str(tiny_classifier_dir), "epochs": 2, "patience": 5, "batch_size": 64,
              "max_length": 24, "dp_epsilon": None, "dp_noise_multiplier": 1.5,
              "dp_accountant": "rdp", "pooling": "cls", "learning_rate": 1e-3}
    both = fine_tune(TrainConfig(mode="adversarial+dp", adv_clean_epochs=0, adv_fraction=0.2,
                                 adv_query_budget=50, **common), out=tmp_path / "both")
    dp = fine_tune(TrainConfig(mode="dp", **common), out=tmp_path / "dp", progress=False)
    manifest = both.manifest
    rounds = manifest["adversarial"]["rounds"]
    assert len(rounds) == 2 and sum(r["successful"] for r in rounds) > 0
    assert manifest["privacy"]["clipping"] == "hooks"
    assert "adversarial example counts with the record" in manifest["privacy"]["unit"]
    # folding keeps each record's sensitivity at the clip norm: the same accounting as plain dp
    assert manifest["privacy"]["epsilon"] == dp.manifest["privacy"]["epsilon"]
    assert manifest["privacy"]["steps"] == dp.manifest["privacy"]["steps"]
    assert "epsilon" in capsys.readouterr().out  # the progress output shows the budget spent


def test_prv_epsilon_hides_only_its_domain_sizing_warning() -> None:
    from opacus.accountants import create_accountant

    from training.accounting import accountant_epsilon

    # strong noise: the RDP bound that PRV sizes its domain with peaks at the largest order
    history = [(0.7, 1.0, 1), (10.0, 128 / 840, 140)]
    prv = create_accountant("prv")
    prv.history = list(history)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        epsilon = accountant_epsilon(prv, 1e-5)
    reference = create_accountant("prv")
    reference.history = list(history)
    with pytest.warns(UserWarning, match="Optimal order is the largest alpha"), \
            np.errstate(divide="ignore"):  # PRV's log(1 - q) at q = 1, as in accountant_epsilon
        assert epsilon == reference.get_epsilon(delta=1e-5)
    rdp = create_accountant("rdp")
    rdp.history = [(50.0, 1.0, 1)]  # the RDP accountant's own bound: the warning stays
    with pytest.warns(UserWarning, match="Optimal order is the largest alpha"):
        accountant_epsilon(rdp, 1e-5)


def test_ghost_and_hook_clipping_agree_without_noise(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config = TrainConfig(model=str(tiny_bert_dir), mode="dp", epochs=1, batch_size=64,
                         max_length=24, dp_epsilon=None, dp_noise_multiplier=0.0,
                         dp_trainable="last-layer", pooling="cls")
    ghost = fine_tune(config, out=tmp_path / "g", progress=False)
    hooks = fine_tune(config.model_copy(update={"dp_clipping": "hooks"}), out=tmp_path / "h",
                      progress=False)
    assert ghost.manifest["privacy"]["clipping"] == "ghost"
    wg, wh = _weights(ghost.checkpoint), _weights(hooks.checkpoint)
    start = load_file(tiny_bert_dir / "model.safetensors")
    layer = "encoder.layer.1.output.dense.weight"
    assert not torch.equal(wg[f"bert.{layer}"], start[layer])  # training moved the last layer
    for name in wg:
        if name.endswith("key.bias"):
            # its true gradient is zero (softmax ignores a shift shared by all keys); Adam
            # scales the two methods' different rounding noise up to full-size steps
            continue
        assert wg[name] == pytest.approx(wh[name], abs=1e-4), name
