"""A classifier head confined to the span of privately released class centroids.

DP-SGD adds noise of the same scale to every trained parameter, so the noise a step adds grows
with the number of parameters while the signal does not. A linear head over a ``hidden``-wide
embedding has ``hidden x K`` weights (384 x 14 for the default model). Once the class centroids
have been released privately they are public, and a head of the form ``W = M @ C`` (``C`` the K
unit centroids, ``M`` a trained K x K mixing matrix) has only ``K x K`` weights: 25 times fewer
here, and still contains the nearest-centroid classifier (``M = scale * I``) it starts from.

After training the head is folded into an ordinary ``torch.nn.Linear`` with the same outputs,
so the saved checkpoint is a plain mean-pooled classifier.

The centroids themselves are released here too: every training text adds its unit-norm
embedding to its class's sum (:func:`class_centroid_sums`), Gaussian noise on the sums makes
their release one Gaussian mechanism that the accountant composes with DP-SGD
(:func:`release_centroids`), and the head starts at their directions
(:func:`install_centroid_head`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from guard.errors import ConfigError

if TYPE_CHECKING:
    from guard.data import TextDataset
    from training.config import TrainConfig


class CentroidSpanHead(torch.nn.Module):
    """``logits = mix(x @ basis.T)``: a linear head whose weights lie in the span of ``basis``.

    Args:
        basis: ``(K, hidden)`` unit class centroids (kept as a buffer, never trained).
        scale: The mixing matrix starts at ``scale * I``: logits are ``scale`` times the
            cosine similarity to each centroid.
    """

    def __init__(self, basis: torch.Tensor, scale: float) -> None:
        super().__init__()
        classes = basis.shape[0]
        self.register_buffer("basis", basis.detach().clone())
        self.mix = torch.nn.Linear(classes, classes, device=basis.device, dtype=basis.dtype)
        with torch.no_grad():
            self.mix.weight.copy_(scale * torch.eye(classes, dtype=basis.dtype))
            self.mix.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for ``(batch, hidden)`` features."""
        basis: torch.Tensor = self.basis  # type: ignore[assignment]
        return self.mix(features @ basis.T)  # type: ignore[no-any-return]

    def folded(self) -> torch.nn.Linear:
        """An ordinary linear layer with exactly this head's outputs."""
        basis: torch.Tensor = self.basis  # type: ignore[assignment]
        linear = torch.nn.Linear(basis.shape[1], basis.shape[0], device=basis.device,
                                 dtype=basis.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.mix.weight @ basis)
            linear.bias.copy_(self.mix.bias)
        return linear


# --- the centroid release that starts the head ----------------------------------------------

#: Logits of a head started from class centroids are this times the cosine similarity between
#: a text's embedding and each centroid: confident enough to classify well from the first step,
#: soft enough for DP-SGD to refine (docs/hardening.md has the trials).
CENTROID_LOGIT_SCALE = 10.0
#: Without an explicit dp_centroid_noise, the centroid release is calibrated to spend this share
#: of the budget on its own (composition then leaves DP-SGD the rest): noise 0.7 at epsilon 8,
#: delta 1e-5 (docs/hardening.md has the trials).
CENTROID_BUDGET_SHARE = 5 / 6
#: The release's noise when the run has a fixed DP-SGD noise instead of a budget.
DEFAULT_CENTROID_NOISE = 0.7


def centroid_release_noise(config: TrainConfig) -> float:
    """The centroid release's noise: ``dp_centroid_noise``, or calibrated to the budget.

    Raises:
        ConfigError: If no noise lets the release spend its share of the budget.
    """
    from training.accounting import noise_for_budget

    if config.dp_centroid_noise is not None:
        return config.dp_centroid_noise
    if config.dp_epsilon is None:
        return DEFAULT_CENTROID_NOISE
    return noise_for_budget(CENTROID_BUDGET_SHARE * config.dp_epsilon,
                            accountant=config.dp_accountant, delta=config.dp_delta,
                            sample_rate=1.0, steps=1)


def gaussian_noise(reference: torch.Tensor, std: float, *, generator: torch.Generator | None,
                   secure: bool = False) -> torch.Tensor:
    """Gaussian noise of standard deviation ``std``, shaped and placed like ``reference``.

    The draws are those of Opacus' DP-SGD noise (``DPOptimizer.add_noise``), so a seeded run
    gives the same numbers: nothing is drawn for ``std`` 0, else one ``torch.normal`` of the
    reference's shape, device and dtype. With ``secure`` it follows Opacus' defence against
    floating-point attacks on the Gaussian sampler (Holohan & Braghin 2021, section 5.1, n = 2:
    the sum of four draws over 2 after one discarded draw), for which Opacus has no public
    function, so the algorithm is repeated here; ``generator`` must then be Opacus' secure one.
    """
    zeros = torch.zeros(reference.shape, device=reference.device, dtype=reference.dtype)
    if std == 0:
        return zeros
    if secure:
        torch.normal(mean=0, std=std, size=(1, 1), device=reference.device,
                     generator=generator)  # drawn and thrown away, as Opacus does
        total = zeros
        for _ in range(4):
            total += torch.normal(mean=0, std=std, size=reference.shape,
                                  device=reference.device, generator=generator)
        return total / 2
    return torch.normal(mean=0, std=std, size=reference.shape, device=reference.device,
                        generator=generator, dtype=reference.dtype)


def class_centroid_sums(model: Any, data: TextDataset, *,
                        encode: Callable[[Sequence[str]], Mapping[str, torch.Tensor]],
                        targets: Callable[[Sequence[str]], torch.Tensor]) -> torch.Tensor:
    """The ``(K, hidden)`` per-class sums of the training texts' unit-norm embeddings.

    Each text adds its embedding to its class's row, so adding or removing one text moves the
    stacked sums by exactly 1 in L2 norm: the sensitivity of their release.

    Args:
        model: A mean-pooled classifier (``sentence_embedding`` and a linear ``classifier``).
        data: The training rows.
        encode: Texts to model inputs on the model's device.
        targets: Labels to class indices on the model's device.

    Raises:
        ConfigError: If the model has no mean-pooled embedding to take centroids of.
    """
    embed = getattr(model, "sentence_embedding", None)
    if embed is None:
        raise ConfigError("starting the head from class centroids needs a mean-pooled model "
                          "(pooling='mean'); use dp_head_init='random'")
    sums = torch.zeros_like(model.classifier.weight, dtype=torch.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(data), 64):
            texts = data.texts[start : start + 64]
            sums.index_add_(0, targets(data.labels[start : start + 64]),
                            embed(**encode(texts)).float())
    model.train(was_training)
    return sums


def release_centroids(sums: torch.Tensor, noise: float, *, generator: torch.Generator | None,
                      secure: bool = False) -> torch.Tensor:
    """The unit-norm directions of ``sums`` after Gaussian noise of standard deviation ``noise``.

    Noise on every sum makes their release one Gaussian mechanism (sensitivity 1, sampling rate
    1, one step), which the accountant composes with DP-SGD. Only directions are kept, so no
    count is released. In secure mode the noise is drawn on the CPU, where Opacus' cryptographic
    generator lives; the result is on ``sums``' device.
    """
    device = sums.device
    if secure:
        sums = sums.cpu()
    noisy = sums + gaussian_noise(sums, noise, generator=generator, secure=secure)
    return torch.nn.functional.normalize(noisy, dim=-1).to(device)


def install_centroid_head(model: Any, centroids: torch.Tensor, *, span: bool) -> None:
    """Start ``model.classifier`` at ``CENTROID_LOGIT_SCALE`` times the unit ``centroids``.

    With ``span`` the head becomes a :class:`CentroidSpanHead` over them (DP-SGD then trains
    only their K x K mixing); otherwise the linear head's weights are set and its bias zeroed.
    """
    head: Any = model.classifier
    centroids = centroids.to(head.weight)
    if span:
        model.classifier = CentroidSpanHead(centroids, CENTROID_LOGIT_SCALE)
        return
    with torch.no_grad():
        head.weight.copy_(CENTROID_LOGIT_SCALE * centroids)
        head.bias.zero_()
