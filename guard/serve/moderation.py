"""The guard's verdicts in OpenAI's moderation format (``flagged``, ``categories``, scores).

OpenAI's moderation categories are built from the guard scorer's own categories:

==========================  ====================================================
OpenAI category             from the guard's categories
==========================  ====================================================
harassment                  the higher of ``toxicity`` and ``insult``
harassment/threatening      ``threat``
hate                        ``hate``
hate/threatening            the lower of ``hate`` and ``threat`` (both at once)
illicit                     ``harmful_instructions``
illicit/violent             the lower of ``harmful_instructions`` and ``violence``
self-harm                   ``self_harm``
self-harm/intent            ``self_harm`` (the scorer does not tell these apart)
self-harm/instructions      the lower of ``self_harm`` and ``harmful_instructions``
sexual                      ``sexual``
sexual/minors               ``sexual`` (not told apart: flagged with ``sexual``)
violence                    ``violence``
violence/graphic            ``violence`` (not told apart)
==========================  ====================================================

A category is flagged when its sources reach the guard policy's thresholds (any source for
"the higher of", all for "the lower of"); a category none of whose sources the scorer has
scores 0 and is not flagged. ``flagged`` is the guard's own verdict: true unless the guard
would let the text through unchanged. Each result also carries the guard's own view
(``guard``: action, the scorer's categories and scores, reasons).

**Failing closed.** A text the guard could not score (scorer error, deadline, too long) is
flagged in every category with score 1, and its ``guard.error`` says why: a client that acts on
``flagged`` never passes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from guard.output_guard import GuardDecision
    from guard.policy import Policy

Combine = Literal["any", "all"]

#: OpenAI category -> how it is built from the guard's categories.
OPENAI_CATEGORIES: dict[str, tuple[Combine, tuple[str, ...]]] = {
    "harassment": ("any", ("toxicity", "insult")),
    "harassment/threatening": ("any", ("threat",)),
    "hate": ("any", ("hate",)),
    "hate/threatening": ("all", ("hate", "threat")),
    "illicit": ("any", ("harmful_instructions",)),
    "illicit/violent": ("all", ("harmful_instructions", "violence")),
    "self-harm": ("any", ("self_harm",)),
    "self-harm/intent": ("any", ("self_harm",)),
    "self-harm/instructions": ("all", ("self_harm", "harmful_instructions")),
    "sexual": ("any", ("sexual",)),
    "sexual/minors": ("any", ("sexual",)),
    "violence": ("any", ("violence",)),
    "violence/graphic": ("any", ("violence",)),
}


def moderation_result(decision: GuardDecision, policy: Policy) -> dict[str, Any]:
    """One entry of ``results`` for the text ``decision`` judged."""
    failed = decision.error is not None and not decision.allowed  # failed closed
    categories: dict[str, bool] = {}
    scores: dict[str, float] = {}
    for name, (combine, sources) in OPENAI_CATEGORIES.items():
        present = [c for c in sources if c in decision.scores]
        if failed:
            categories[name], scores[name] = True, 1.0
        elif len(present) < len(sources) and (combine == "all" or not present):
            categories[name], scores[name] = False, 0.0
        else:
            values = [decision.scores[c] for c in present]
            over = [decision.scores[c] >= policy.rule(c).threshold for c in present]
            if combine == "any":
                categories[name], scores[name] = any(over), max(values)
            else:
                categories[name], scores[name] = all(over), min(values)
    return {
        "flagged": decision.action != "allow",
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": {name: ["text"] for name in OPENAI_CATEGORIES},
        "guard": {"action": decision.action, "scores": dict(decision.scores),
                  "reasons": list(decision.reasons), "error": decision.error},
    }
