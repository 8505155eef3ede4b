"""Shared fixtures: all offline, tiny models built from configs, real libraries throughout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def pytest_configure(config: pytest.Config) -> None:
    # Tests never touch the network or the user's caches.
    os.environ.update(OFFLINE_ENV)
    scratch = Path(config.rootpath) / ".pytest_cache" / "hf-scratch"
    for var in ("HF_HOME", "MPLCONFIGDIR", "TORCH_HOME"):
        os.environ.setdefault(var, str(scratch / var.lower()))
    os.environ["GUARD_CACHE_DIR"] = str(scratch / "guard-cache")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from guard.models.source import default_backbone_path

    return default_backbone_path()


def _tiny_bert(folder: Path, minilm_dir: Path, **overrides: float) -> Path:
    """Save a randomly initialised 2-layer BERT (hidden 32) with MiniLM's real tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        **overrides)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with MiniLM's real tokenizer."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert"), minilm_dir)


@pytest.fixture(scope="session")
def no_dropout_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """The same tiny BERT without dropout: sharded and whole-batch training then agree."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert-no-dropout"), minilm_dir,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """The tiny BERT fine-tuned on the bundled intents through the real loop (a few seconds).

    It reaches roughly 20-30% test accuracy over 14 intents: well above chance, so attacks have
    correct predictions to flip, and cheap enough for every test to share.
    """
    from training.config import TrainConfig
    from training.pipeline import fine_tune

    out = tmp_path_factory.mktemp("tiny-clf") / "model"
    config = TrainConfig(model=str(tiny_bert_dir), epochs=8, patience=8, batch_size=32,
                         learning_rate=3e-3, max_length=32)
    fine_tune(config, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer GPT-2 with a byte-level BPE tokenizer trained here."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from guard.data import load_splits

    texts = list(load_splits("bundled").train.texts)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=400, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2,
                        n_head=2, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def detoxify_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """A detoxify-format checkpoint of a tiny 6-class BERT (the layout detoxify publishes).

    Its config and tokenizer are in the ``hf`` folder beside it, which the checkpoint's
    ``model_type`` names (as detoxify's offline loading expects).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    config = BertConfig.from_pretrained(tiny_bert_dir, num_labels=len(classes))
    torch.manual_seed(1)
    model = BertForSequenceClassification(config)
    folder = tmp_path_factory.mktemp("detoxify")
    config.save_pretrained(folder / "hf")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder / "hf")
    tiny_bert_dir = folder / "hf"
    path = folder / "tiny.ckpt"
    torch.save({
        "config": {
            "arch": {"args": {"model_type": str(tiny_bert_dir),
                              "model_name": "BertForSequenceClassification",
                              "tokenizer_name": "BertTokenizer",
                              "num_classes": len(classes)}},
            "dataset": {"args": {"classes": classes}},
        },
        "state_dict": model.state_dict(),
    }, path)
    return path



#: A ChatML template, as SmolLM2 uses, for the tiny chat model.
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
          "message['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="session")
def tiny_chat_dir(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2_dir: Path) -> Path:
    """A tiny GPT-2 chat model (ChatML template, 1024 positions) for the tutor's tests."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    # wide initial weights: greedy replies then differ from prompt to prompt (with the usual
    # 0.02 every reply is the same run of newlines)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=32, n_layer=2,
                        n_head=2, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, initializer_range=0.6)
    folder = tmp_path_factory.mktemp("tiny-chat")
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
