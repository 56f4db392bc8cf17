"""FlexMatch (Zhang et al., NeurIPS 2021): FixMatch with a threshold per class that follows
how well the network has learnt that class (curriculum pseudo-labelling)."""

from __future__ import annotations

import torch

from bloodssl.methods.engine import Batch, Context
from bloodssl.methods.fixmatch import FixMatchCNN
from bloodssl.methods.registry import register


@register("flexmatch")
class FlexMatchCNN(FixMatchCNN):
    """FixMatch whose threshold for class ``c`` is ``threshold * M(beta_c)``.

    ``beta_c`` is the learning effect of ``c``: how many unlabelled images were last
    predicted as ``c`` above ``threshold``, over the largest such count (or, while more
    images than that have never been predicted confidently, over their number: the warm-up
    of the paper). ``M(x) = x / (2 - x)`` maps it convexly, so a class the network has barely
    learnt gets a low threshold and contributes pseudo-labels early. Every other parameter
    is FixMatch's.
    """

    name = "flexmatch"

    def init_state(self, n_unlabelled: int, prior: torch.Tensor) -> dict:
        return {**super().init_state(n_unlabelled, prior), "selected": torch.full((n_unlabelled,), -1)}

    def thresholds(self, context: Context, batch: Batch, confidence: torch.Tensor, pseudo: torch.Tensor):
        selected = context.state["selected"]
        counts = torch.bincount(selected[selected >= 0], minlength=len(context.prior)).float()
        unused = float((selected < 0).sum())
        effect = counts / max(counts.max().item(), unused, 1.0)
        confident = confidence >= self.threshold
        selected[batch.rows[confident]] = pseudo[confident]
        return self.threshold * (effect / (2 - effect))[pseudo]
