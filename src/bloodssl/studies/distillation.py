"""What notebook 06 measures of soft pseudo-labels from an ensemble: the student of
``EnsembleDistillationCNN`` on the curve's class-stratified labels and on the labels chosen
at random or by TypiClust (``label_efficiency.chosen_labels``), its first teacher the CNN
that the curve or the label choices trained on the same labels (free once they ran).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from bloodssl.core.checkpoints import checkpoint_path
from bloodssl.data import Split
from bloodssl.data.splits import mask_labels
from bloodssl.methods.distillation import EnsembleDistillationCNN
from bloodssl.studies import baseline, label_efficiency


def runs(splits: Mapping[str, Split], plan: label_efficiency.Plan, seeds: Sequence[int], embeddings: np.ndarray | None,
         *, profile: str, class_names: Sequence[str] | None) -> list[baseline.Run]:  # fmt: skip
    """The student of ``EnsembleDistillationCNN`` (``plan.distillation``) on the labels of each
    of ``plan.distillation_selections``: the stratified ones at every distillation fraction, the
    chosen ones (TypiClust's on ``embeddings`` of the training images) at the choice fractions.
    Every label choice is made before anything trains, so a missing embedding fails at once. The
    cost is every network's; ``pseudo_accuracy``: the share of soft labels that are right."""
    train, val, model = splits["train"], splits["val"], plan.cnn.get("model", "cnn")
    jobs = [(f, selection, s) for f in plan.distillation_fractions for selection in plan.distillation_selections
            if selection == "stratified" or f in plan.distillation_choice_fractions for s in seeds]  # fmt: skip
    labelled = {job: label_efficiency.chosen_labels(job[1], job[0], train.labels, embeddings, job[2]) for job in jobs}
    out = []
    for fraction, selection, seed in tqdm(jobs, desc="distillation", unit="run"):
        first_teacher = label_efficiency.selection_checkpoint(selection, model, fraction, seed, profile)
        base = label_efficiency.recipe_cnn(plan, seed, first_teacher)
        name = "distillation" if selection == "stratified" else f"distillation-{selection}-labels"
        folder = checkpoint_path(label_efficiency.STEM, name, model, fraction, seed, profile).with_suffix("")
        method = EnsembleDistillationCNN(base, checkpoint_dir=folder, progress=False, **plan.distillation)
        given = mask_labels(train.labels, labelled[fraction, selection, seed])
        method.fit(train.images, given, eval_set=(val.images, val.labels))
        first, student = method.estimators_
        chosen = {} if selection == "stratified" else {"labels": selection}
        out.append(baseline.evaluated(
            student, splits, method="distillation", fraction=fraction, seed=seed, class_names=class_names,
            params={"teachers": method.teachers, "steps": method.steps, **chosen},
            wall_seconds=first.fit_seconds_ + method.teacher_seconds_ + student.fit_seconds_,
            train_metrics={"best_step": student.best_epoch_,
                           "pseudo_accuracy": method.soft_label_accuracy(train.labels)}))  # fmt: skip
    return out
