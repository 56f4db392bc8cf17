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
from bloodssl.studies import baseline
from bloodssl.studies.label_efficiency import STEM, Plan, chosen_labels, recipe_cnn, selection_checkpoint


def runs(splits: Mapping[str, Split], plan: Plan, seeds: Sequence[int], embeddings: np.ndarray | None, *,
         profile: str, class_names: Sequence[str] | None) -> list[baseline.Run]:  # fmt: skip
    """The student of ``EnsembleDistillationCNN`` (``plan.distillation``) at each of
    ``plan.distillation_fractions`` on the labels of each of ``plan.distillation_selections``:
    the stratified ones at every distillation fraction, the chosen ones (``embeddings`` of the
    training images for TypiClust) only at ``plan.distillation_choice_fractions``. Round 0 is
    the CNN the curve or the label choices trained on those labels at that fraction and seed
    (``selection_checkpoint``: free once they ran); every label choice is made before anything
    trains, so a missing embedding fails at once. Its cost is every network's: round 0, the
    other teachers, labelling the images and the student; ``pseudo_accuracy`` is the share of
    unlabelled training images whose soft label puts the right class first."""
    train, val, model = splits["train"], splits["val"], plan.cnn.get("model", "cnn")
    jobs = [(f, selection, s) for f in plan.distillation_fractions for selection in plan.distillation_selections
            if selection == "stratified" or f in plan.distillation_choice_fractions for s in seeds]  # fmt: skip
    labelled = {job: chosen_labels(job[1], job[0], train.labels, embeddings, job[2]) for job in jobs}
    out = []
    for fraction, selection, seed in tqdm(jobs, desc="distillation", unit="run"):
        base = recipe_cnn(plan, seed, selection_checkpoint(selection, model, fraction, seed, profile))
        name = "distillation" if selection == "stratified" else f"distillation-{selection}-labels"
        folder = checkpoint_path(STEM, name, model, fraction, seed, profile).with_suffix("")
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
