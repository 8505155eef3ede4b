"""A BERT classifier over the mean of its token embeddings instead of the [CLS] token.

Sentence encoders such as all-MiniLM-L6-v2 were trained so that the L2-normalised mean of the
token embeddings represents the sentence; their [CLS] vector is weak. A linear head over that
mean learns from few examples and few trainable parameters, which is what differentially private
training on small data needs (see ``docs/hardening.md``).

The checkpoint is an ordinary ``save_pretrained`` folder whose ``config.json`` says
``"model_type": "guard-mean-bert"``. :func:`register` teaches ``transformers``' auto classes that
type; :func:`guard.models.source.load_pretrained` calls it, so every guard command loads these
models like any other. Plain ``transformers`` without this package refuses the unknown type
loudly instead of silently running a [CLS] head over the wrong representation.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    BertPreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

#: The ``model_type`` written into the ``config.json`` of mean-pooled checkpoints.
MODEL_TYPE = "guard-mean-bert"


class MeanPooledBertConfig(BertConfig):
    """A :class:`~transformers.BertConfig` for :class:`MeanPooledBertForSequenceClassification`."""

    model_type = MODEL_TYPE


class MeanPooledBertForSequenceClassification(BertPreTrainedModel):
    """BERT encoder, masked mean of the last hidden states, L2 normalisation, dropout, linear head.

    Parameter names match :class:`~transformers.BertForSequenceClassification` (``bert.*``,
    ``classifier.*``) without the unused pooler, so BERT backbones load into it unchanged.
    """

    config_class = MeanPooledBertConfig

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout
        self.dropout = torch.nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()  # type: ignore[no-untyped-call]

    def sentence_embedding(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """The unit-norm masked mean of the last hidden states: what the head reads."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids, **kwargs).last_hidden_state
        if attention_mask is None:
            mask = torch.ones(hidden.shape[:2], dtype=hidden.dtype, device=hidden.device)
        else:
            mask = attention_mask.to(hidden.dtype)
        mask = mask.unsqueeze(-1)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=-1)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Logits (and the cross-entropy loss when ``labels`` are given)."""
        pooled = self.sentence_embedding(input_ids=input_ids, attention_mask=attention_mask,
                                         token_type_ids=token_type_ids, **kwargs)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)  # type: ignore[arg-type]


@functools.cache
def register() -> None:
    """Make ``AutoConfig`` / ``AutoModelForSequenceClassification`` know the mean-pooled type.

    Idempotent; called before any guard code loads a model.
    """
    AutoConfig.register(MODEL_TYPE, MeanPooledBertConfig)
    AutoModelForSequenceClassification.register(MeanPooledBertConfig,
                                                MeanPooledBertForSequenceClassification)


class MeanPooledBackbone:
    """Builds a fresh mean-pooled classifier over a BERT backbone, with an auto-class interface.

    Pass it where ``AutoModelForSequenceClassification`` would go (e.g. to
    :func:`guard.models.source.load_pretrained`) to start fine-tuning with mean pooling.
    """

    _CONFIG_KEYS = ("num_labels", "id2label", "label2id")

    @classmethod
    def from_pretrained(cls, location: str,
                        **options: Any) -> MeanPooledBertForSequenceClassification:
        """Load the backbone in ``location`` under a new mean-pooled head.

        Args:
            location: Backbone folder or hub id.
            **options: ``num_labels``, ``id2label``, ``label2id`` set the config; the rest go to
                ``from_pretrained`` (``local_files_only``, ``revision``, ...).

        Raises:
            ValueError: If the backbone is not BERT (other families keep the [CLS] head).
        """
        config_options = {k: options.pop(k) for k in cls._CONFIG_KEYS if k in options}
        backbone = AutoConfig.from_pretrained(
            location, local_files_only=options.get("local_files_only", False),
            revision=options.get("revision"),
            trust_remote_code=options.get("trust_remote_code", False))
        if backbone.model_type != "bert":
            raise ValueError(f"mean pooling supports BERT backbones; this one is "
                             f"{backbone.model_type!r}. Use pooling='cls'")
        dropped = {"model_type", "architectures", "transformers_version"}
        if "num_labels" in config_options:  # the backbone's label maps are for its own labels
            dropped |= {"id2label", "label2id"}
        values = {k: v for k, v in backbone.to_dict().items() if k not in dropped}
        config = MeanPooledBertConfig(**{**values, **config_options})  # type: ignore[no-untyped-call]
        model: MeanPooledBertForSequenceClassification = \
            MeanPooledBertForSequenceClassification.from_pretrained(location, config=config,
                                                                    **options)
        return model
