"""Mean Teacher (Tarvainen and Valpola, NeurIPS 2017) on the online engine."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bloodssl.methods.engine import Batch, Context, OnlineSSL, StepOutput
from bloodssl.methods.registry import register
from bloodssl.methods.supervised import CNNClassifier


@register("mean_teacher")
class MeanTeacherCNN(OnlineSSL):
    """Consistency with the moving average of the weights (see ``OnlineSSL`` for the shared
    parameters).

    The network's softmax on one weak view of each unlabelled image is pulled (mean squared
    error) towards the averaged network's softmax on another weak view. No pseudo-label is
    chosen, so no threshold. The consistency weight ``unlabelled_weight`` ramps up linearly
    over the first ``warmup`` share of the steps, as in USB's implementation (whose
    defaults, weight 50 over 40 % of the steps, are kept here).
    """

    name = "mean_teacher"

    def __init__(
        self,
        estimator: CNNClassifier | None = None,
        steps: int = 1000,
        labelled_batch: int = 64,
        unlabelled_ratio: int = 7,
        unlabelled_weight: float = 50.0,
        warmup: float = 0.4,
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
        self.unlabelled_weight = unlabelled_weight
        self.warmup = warmup
        self.lr = lr
        self.ema_decay = ema_decay
        self.eval_every = eval_every
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    def _validate_method(self) -> None:
        if not 0 <= self.warmup <= 1:
            raise ValueError(f"warmup must be in [0, 1] (a share of the steps), got {self.warmup}")

    def train_step(self, context: Context, batch: Batch) -> StepOutput:
        with torch.no_grad():
            target = F.softmax(context.average(context.weak(batch.unlabelled, context.generator)), 1)
        views = torch.cat([context.weak(batch.labelled, context.generator),
                           context.weak(batch.unlabelled, context.generator)])  # fmt: skip
        logits = context.forward(views)
        n = len(batch.labelled)
        consistency = F.mse_loss(F.softmax(logits[n:], 1), target)
        ramp = min(1.0, context.step / max(self.warmup * context.steps, 1e-9)) if self.warmup else 1.0
        loss = context.supervised_loss(logits[:n], batch.targets) + self.unlabelled_weight * ramp * consistency
        return StepOutput(loss)
