"""The assistant: question -> intent -> recommended answer.

A virtual-world assistant built on an intent classifier answers each user message with the
recommended answer for the predicted intent, and with the out-of-scope answer when it is not
confident. This gives the harness real assistant outputs to evaluate and guard.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from guard.errors import ConfigError
from guard.types import Classifier

#: File name of the intent -> answer table, beside a trained model or a bundled data set.
RESPONSES_FILE = "responses.json"


@dataclass(frozen=True)
class Response:
    """One assistant reply.

    Attributes:
        intent: The predicted intent, or the fallback intent when confidence was too low.
        confidence: Probability of the most likely intent.
        answer: The text shown to the user.
    """

    intent: str
    confidence: float
    answer: str


class Responder:
    """Answers messages with the recommended answer of their predicted intent.

    Args:
        classifier: Intent classifier.
        responses: Intent -> answer. Must cover every label of the classifier.
        fallback_intent: Intent used when the classifier's confidence is below ``min_confidence``.
        min_confidence: Confidence below which the fallback answer is given.

    Raises:
        ConfigError: If an intent has no answer or the fallback intent is unknown.
    """

    def __init__(
        self,
        classifier: Classifier,
        responses: Mapping[str, str],
        *,
        fallback_intent: str = "out_of_scope",
        min_confidence: float = 0.0,
    ) -> None:
        missing = [label for label in classifier.labels if label not in responses]
        if missing:
            raise ConfigError(
                f"no answer for intents {missing}; add them to {RESPONSES_FILE}"
            )
        if min_confidence > 0 and fallback_intent not in responses:
            raise ConfigError(
                f"fallback intent {fallback_intent!r} has no answer; add it to {RESPONSES_FILE} "
                "or set min_confidence=0"
            )
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.classifier = classifier
        self.responses = dict(responses)
        self.fallback_intent = fallback_intent
        self.min_confidence = min_confidence

    @classmethod
    def from_model_dir(
        cls,
        classifier: Classifier,
        model_dir: str | Path,
        *,
        fallback_intent: str = "out_of_scope",
        min_confidence: float = 0.0,
    ) -> Responder:
        """Build a responder from the ``responses.json`` saved beside a trained model.

        Raises:
            ConfigError: If the folder has no readable ``responses.json``.
        """
        path = Path(model_dir) / RESPONSES_FILE
        try:
            responses = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"cannot read {path}: {exc}. Write a JSON object mapping each intent to its answer"
            ) from exc
        return cls(
            classifier, responses, fallback_intent=fallback_intent, min_confidence=min_confidence
        )

    def respond(self, messages: Sequence[str]) -> list[Response]:
        """Answer each message."""
        if len(messages) == 0:
            return []
        probs = self.classifier.predict_proba(messages)
        labels = self.classifier.labels
        replies = []
        for row in probs:
            best = int(row.argmax())
            confidence = float(row[best])
            intent = labels[best] if confidence >= self.min_confidence else self.fallback_intent
            replies.append(Response(intent, confidence, self.responses[intent]))
        return replies

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """The answers alone, so a responder is also a :class:`guard.types.Generator`."""
        return [reply.answer for reply in self.respond(prompts)]
