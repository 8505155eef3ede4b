"""A classifier head confined to the span of privately released class centroids.

DP-SGD adds noise of the same scale to every trained parameter, so the noise a step adds grows
with the number of parameters while the signal does not. A linear head over a ``hidden``-wide
embedding has ``hidden x K`` weights (384 x 14 for the default model). Once the class centroids
have been released privately they are public, and a head of the form ``W = M @ C`` (``C`` the K
unit centroids, ``M`` a trained K x K mixing matrix) has only ``K x K`` weights: 25 times fewer
here, and still contains the nearest-centroid classifier (``M = scale * I``) it starts from.

After training the head is folded into an ordinary ``torch.nn.Linear`` with the same outputs,
so the saved checkpoint is a plain mean-pooled classifier.
"""

from __future__ import annotations

import torch


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
