"""Adversarial attacks on TextAttack: recipes by name, a fast resumable runner, typed records.

``import attacks`` stays light; TextAttack is imported (offline, without side effects) by
:func:`attacks.textattack_env.load_textattack` when an attack is built.
"""

from __future__ import annotations

from guard.registry import Registry

RECIPES: Registry[object] = Registry("recipe")
RECIPES.register("deepwordbug", "attacks.recipes:deepwordbug",
                 summary="DeepWordBug (Gao et al. 2018): character edits, Levenshtein <= 30")
RECIPES.register("pruthi", "attacks.recipes:pruthi",
                 summary="Pruthi et al. 2019: keyboard typos, at most 1 word perturbed")
RECIPES.register("input-reduction", "attacks.recipes:input_reduction",
                 summary="Input Reduction (Feng et al. 2018): delete words, keep the prediction")
RECIPES.register("pwws", "attacks.recipes:pwws",
                 summary="PWWS (Ren et al. 2019): WordNet synonyms; needs NLTK WordNet")
RECIPES.register("textfooler-offline", "attacks.recipes:textfooler_offline",
                 summary="TextFooler (Jin et al. 2019) offline: counter-fitted GloVe, USE")
RECIPES.register("a2t-offline", "attacks.recipes:a2t_offline",
                 summary="A2T (Yoo & Qi 2021) offline: counter-fitted GloVe, MiniLM similarity")
RECIPES.register("bae-offline", "attacks.recipes:bae_offline",
                 summary="BAE-R (Garg & Ramakrishnan 2020) offline: SmolLM2 proposals, USE")
RECIPES.register("textfooler", "attacks.recipes:textfooler",
                 summary="TextFooler (Jin et al. 2019) as published: needs hub resources")
RECIPES.register("a2t", "attacks.recipes:a2t",
                 summary="A2T (Yoo & Qi 2021) as published: needs hub resources")
RECIPES.register("bae", "attacks.recipes:bae",
                 summary="BAE (Garg & Ramakrishnan 2019) as published: needs hub resources")
RECIPES.register("checklist", "attacks.recipes:checklist",
                 summary="CheckList (Ribeiro et al. 2020) as published: needs hub resources")

__all__ = ["RECIPES"]
