"""Word proposals from a causal LM (the bae-offline recipe's transformation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from guard.errors import ConfigError

VOCABULARY = ["museum", "ticket", "tickets", "refund", "where", "open", "today", "my",
              "book", "the", "is", "a", "concert", "please"]


def test_only_space_prefixed_whole_words_of_the_vocabulary_are_candidates(
        tiny_gpt2_dir: Path) -> None:
    from transformers import AutoTokenizer

    from attacks.causal_lm import word_start_tokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    words = word_start_tokens(tokenizer, VOCABULARY)
    assert words and set(words.values()) <= set(VOCABULARY)
    for index, word in words.items():
        assert tokenizer.decode([index]) == " " + word
    # every vocabulary word the tokenizer holds as one space-prefixed token is found
    vocab = tokenizer.get_vocab()
    assert {w for w in VOCABULARY if "Ġ" + w in vocab} == set(words.values())


def test_proposals_are_the_lms_most_likely_next_words_in_place(tiny_gpt2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from attacks.causal_lm import word_swap_causal_lm
    from attacks.textattack_env import load_textattack

    textattack = load_textattack()
    swap = word_swap_causal_lm(str(tiny_gpt2_dir), VOCABULARY, max_candidates=3)
    text = textattack.shared.AttackedText("Where is the Museum today")
    out = swap._get_transformations(text, [3, 0])
    assert out and len(out) <= 6
    for candidate in out:
        changed = [i for i, (a, b) in enumerate(zip(text.words, candidate.words, strict=True))
                   if a != b]
        assert len(changed) == 1 and changed[0] in (0, 3)
        new = candidate.words[changed[0]]
        assert new[0].isupper() and new.lower() in VOCABULARY  # the original's case

    # The proposals for "Museum" are the top three vocabulary words after "Where is the".
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir).eval()
    ids = tokenizer(tokenizer.bos_token + "Where is the", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    ranked = sorted(swap._ids, key=lambda i: -float(logits[i]))[:3]
    expected = {tokenizer.decode([i]).strip().capitalize() for i in ranked} - {"Museum"}
    assert {c.words[3] for c in out if c.words[3] != "Museum"} == expected


def test_left_padding_does_not_change_the_proposals_and_it_pickles(tiny_gpt2_dir: Path) -> None:
    import pickle

    from attacks.causal_lm import word_swap_causal_lm

    swap = word_swap_causal_lm(str(tiny_gpt2_dir), VOCABULARY, max_candidates=5, batch_size=4)
    prefixes = ["Where is the", "Book", "Please refund my ticket for the concert"]
    together = swap._next_words(prefixes)
    assert together == [swap._next_words([p])[0] for p in prefixes]
    assert pickle.loads(pickle.dumps(swap))._next_words(prefixes) == together


def test_bad_settings_and_unusable_tokenizers_are_refused(tiny_gpt2_dir: Path) -> None:
    from attacks.causal_lm import word_swap_causal_lm

    with pytest.raises(ConfigError, match="max_candidates"):
        word_swap_causal_lm(str(tiny_gpt2_dir), VOCABULARY, max_candidates=0)
    with pytest.raises(ConfigError, match="no whole-word tokens"):
        word_swap_causal_lm(str(tiny_gpt2_dir), ["zyzzyva"])
