"""FixMatch (Sohn et al., NeurIPS 2020) on the online engine.

Confidence-threshold pseudo-labelling done online: at every step the teacher labels a
weakly augmented view of each unlabelled image, and where it is confident enough the
network is trained to give that label to a strongly augmented view of the same image,
next to the usual cross-entropy on the labelled images. Offline self-training
(``bloodssl.methods.self_training.SelfTrainingCNN``) freezes its pseudo-labels for a whole
round; here they improve with every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bloodssl.core.validation import check_threshold
from bloodssl.data.augment import StrongAugment
from bloodssl.methods.engine import Batch, Context, OnlineSSL, StepOutput
from bloodssl.methods.registry import register
from bloodssl.methods.supervised import CNNClassifier

TEACHERS = ("online", "average")


@register("fixmatch")
class FixMatchCNN(OnlineSSL):
    """FixMatch on top of a ``CNNClassifier`` (see ``OnlineSSL`` for the shared parameters).

    Each step's unlabelled images are labelled on a weak view; where the confidence reaches
    ``threshold`` the strong view (``strong``, default ``StrongAugment()``: dihedral, shift,
    colour jitter, cutout) is trained towards that label with weight ``unlabelled_weight``.

    Two guards against confirmation bias, both off in the original recipe:
    ``teacher="average"`` labels the weak views with the moving average of the weights
    (as Mean Teacher) instead of the network being trained; ``align=True`` applies
    distribution alignment (ReMixMatch): the teacher's probabilities are multiplied by the
    labelled class shares over a running mean of its predictions, so no class can take
    over the pseudo-labels.
    """

    name = "fixmatch"

    def __init__(
        self,
        estimator: CNNClassifier | None = None,
        steps: int = 1000,
        labelled_batch: int = 64,
        unlabelled_ratio: int = 7,
        threshold: float = 0.95,
        unlabelled_weight: float = 1.0,
        teacher: str = "online",
        align: bool = False,
        strong: StrongAugment | None = None,
        lr: float = 0.03,
        ema_decay: float = 0.999,
        eval_every: int = 100,
        checkpoint_dir=None,
        progress: bool = True,
    ):
        self.estimator = estimator
        self.steps = steps
        self.labelled_batch = labelled_batch
        self.unlabelled_ratio = unlabelled_ratio
        self.threshold = threshold
        self.unlabelled_weight = unlabelled_weight
        self.teacher = teacher
        self.align = align
        self.strong = strong
        self.lr = lr
        self.ema_decay = ema_decay
        self.eval_every = eval_every
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    def _validate_method(self) -> None:
        check_threshold(self.threshold)
        if self.teacher not in TEACHERS:
            raise ValueError(f"unknown teacher {self.teacher!r}; choose one of {', '.join(TEACHERS)}")

    def init_state(self, n_unlabelled: int, prior: torch.Tensor) -> dict:
        return {"prediction_mean": prior.clone()}

    def teacher_proba(self, context: Context, batch: Batch) -> torch.Tensor:
        """The teacher's probabilities of a weak view of the unlabelled batch (aligned if ``align``)."""
        teacher = context.average if self.teacher == "average" else context.network
        with torch.no_grad():
            proba = F.softmax(teacher(context.weak(batch.unlabelled, context.generator)), 1)
            if self.align:
                context.state["prediction_mean"].lerp_(proba.mean(0), 0.01)
                proba = proba * context.prior / context.state["prediction_mean"]
                proba /= proba.sum(1, keepdim=True)
        return proba

    def thresholds(self, context: Context, batch: Batch, confidence: torch.Tensor, pseudo: torch.Tensor):
        """The confidence each pseudo-label must reach: ``threshold`` for every class."""
        return self.threshold

    def train_step(self, context: Context, batch: Batch) -> StepOutput:
        confidence, pseudo = self.teacher_proba(context, batch).max(1)
        mask = (confidence >= self.thresholds(context, batch, confidence, pseudo)).float()
        strong = self.strong or StrongAugment()
        views = torch.cat([context.weak(batch.labelled, context.generator),
                           strong.on_tensor(batch.unlabelled, context.generator)])  # fmt: skip
        logits = context.forward(views)
        n = len(batch.labelled)
        loss_u = (F.cross_entropy(logits[n:], pseudo, reduction="none") * mask).mean()
        return StepOutput(context.supervised_loss(logits[:n], batch.targets) + self.unlabelled_weight * loss_u,
                          pseudo, mask)  # fmt: skip
