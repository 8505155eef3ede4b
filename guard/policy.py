"""What the output guard does with scores: per-category thresholds and actions."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from guard.config import build_model, read_toml
from guard.errors import ConfigError
from guard.registry import suggest

Action = Literal["block", "redact"]


class CategoryRule(BaseModel):
    """The rule for one category.

    Attributes:
        threshold: A score at or above this violates the category.
        action: ``block`` replaces the whole reply with the safe message; ``redact`` masks the
            offending words (or, when no single word is to blame, replaces the reply).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.5, ge=0.0, le=1.0)
    action: Action = "block"


class Policy(BaseModel):
    """Thresholds and actions, from code or a TOML file.

    Example ``policy.toml``::

        safe_message = "Let's keep it friendly! Ask me about tours, tickets or events."
        [default]
        threshold = 0.5
        action = "block"
        [categories.obscene]
        threshold = 0.6
        action = "redact"

    Attributes:
        default: Rule for categories without their own.
        categories: Per-category rules.
        safe_message: Text shown instead of a blocked reply.
        mask: Replacement for each redacted word.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: CategoryRule = CategoryRule()
    categories: dict[str, CategoryRule] = Field(default_factory=dict)
    safe_message: str = "Sorry, I can't share that reply. Let's keep things friendly."
    mask: str = "****"

    def rule(self, category: str) -> CategoryRule:
        """The rule for ``category`` (its own, else the default)."""
        return self.categories.get(category, self.default)

    def check_categories(self, categories: Collection[str], *, where: str = "policy") -> None:
        """Refuse rules for categories the scorer does not score (a typo would never apply).

        Call it wherever a policy meets a scorer, with ``scorer.categories``.

        Args:
            categories: The categories the scorer returns.
            where: What to call the policy in the message, e.g. ``"policy p.toml"``.

        Raises:
            ConfigError: Naming every unknown ``[categories.NAME]`` table, with the closest
                known names and the full list.
        """
        known = sorted(categories)
        unknown = [name for name in self.categories if name not in categories]
        if not unknown:
            return
        problems = []
        for name in unknown:
            close = suggest(name, known)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            problems.append(f"[categories.{name}]{hint}")
        one = len(unknown) == 1
        raise ConfigError(
            f"{where}: unknown categor{'y' if one else 'ies'} {', '.join(problems)}: the "
            f"scorer scores {', '.join(known) or 'no categories'}, so "
            f"{'that rule' if one else 'those rules'} would never apply"
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a policy file; unknown keys are rejected.

        Raises:
            ConfigError: If the file cannot be read or holds invalid values.
        """
        return build_model(cls, read_toml(path, what="policy"), what=f"policy {path}")
