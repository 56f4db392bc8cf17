"""The semi-supervised active-learning loop of Thanushika, Manivannan and Nirthika.

Train f0 on the labelled images; then, for round r = 1..R, with the predictions of
f(r-1) on the pool (the training split):

1. query ``budget`` images by the query strategy and ask the oracle for their labels (AL);
2. pseudo-label the images predicted with confidence >= ``threshold``, leaving out the
   images labelled by the oracle and those queried this round (SSL);
3. fine-tune f(r-1) into f(r) on the human labels plus the pseudo-labels
   (class-weighted cross-entropy, a few warm-started epochs).

``budget=0`` gives SSL only, ``threshold=None`` AL only and ``rounds=0`` the baseline.
Pseudo-labels are chosen afresh each round from the newest model, so a better model can
correct an earlier mistake. The validation split selects each round's best epoch; the
test split (``report_set``) is only predicted for the round's log. With ``state_dir`` every
round's model is checkpointed and the loop's state written atomically, so a run stopped
while the oracle is a person (``FileOracle``) resumes, and a finished run replays for free.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from tqdm.auto import tqdm

from bloodssl.active.oracle import OracleError, SimulatedOracle
from bloodssl.active.strategies import Strategy, get_strategy
from bloodssl.core.evaluate import evaluate
from bloodssl.core.hashing import fingerprint, signature, weights_fingerprint
from bloodssl.core.io import atomic_path
from bloodssl.core.prediction import TTA_MODES, Memo
from bloodssl.core.validation import as_labels, infer_n_classes
from bloodssl.data import to_tensor
from bloodssl.data.augment import dihedral
from bloodssl.methods.pseudo_labels import select_confident
from bloodssl.methods.supervised import CNNClassifier

STATE_FILE = "state.json"
POOL_MEMO = Memo(16)  # predictions kept in memory (about 10 MB each for the training split)


#: Views for predicting the pool: the dihedral group, its four rotations, or the image alone.
VIEWS: dict[str, list[tuple[int, bool]]] = {**TTA_MODES, "rotations": [(k, False) for k in range(4)]}


def pool_predictions(
    learner: CNNClassifier, X: np.ndarray, views: str | None = None, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Per-view class probabilities (V, N, C) and view-averaged embeddings (N, D) in one pass.

    ``views`` (a key of ``VIEWS``) defaults to the learner's test-time augmentation, so
    ``samples.mean(0)`` is ``learner.predict_proba(X)``; the spread of the views drives
    BALD. The embeddings are ``learner.transform`` averaged over the same views (rotation
    invariant, like the cells). The latest ``POOL_MEMO.size`` results are kept by views,
    weights and images, so loops that share a model (round 0) predict once.
    """
    model = learner.model_
    views = views or learner.tta
    if views not in VIEWS:
        raise ValueError(f"unknown views {views!r}; choose one of {', '.join(VIEWS)}")
    key = views + weights_fingerprint(model) + fingerprint(X)
    return POOL_MEMO.get(key, lambda: _predict_views(model, X, VIEWS[views], batch_size))


def _predict_views(model, X: np.ndarray, views: list[tuple[int, bool]], batch_size: int) -> tuple:
    probs, feats = [], []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            images = to_tensor(X[start : start + batch_size]).contiguous(memory_format=torch.channels_last)
            features = [model.features(dihedral(images, k, flip)) for k, flip in views]
            probs.append(torch.stack([F.softmax(model.head(f), 1) for f in features]))
            feats.append(torch.stack(features).mean(0))
    return torch.cat(probs, 1).numpy(), torch.cat(feats).numpy()


def default_learner(**params) -> CNNClassifier:
    """The paper's learner: class-weighted cross-entropy, and no label smoothing, so that a
    confidence threshold such as 0.97 can be reached (smoothing 0.1 over 8 classes trains
    the top class towards 0.91). ``params`` override, e.g. ``epochs`` or ``seed``."""
    return CNNClassifier(**{"class_weight": "balanced", "label_smoothing": 0.0, **params})


class ActiveLoop(ClassifierMixin, BaseEstimator):
    """Semi-supervised active learning around a ``CNNClassifier``.

    Parameters (stored as given, checked in ``fit``):

    - ``learner``: the classifier, refitted each round; round 0 uses it as given. The
      default is ``default_learner()``: class-weighted cross-entropy without label
      smoothing (smoothing caps a confident prediction near 0.91, below a 0.97 threshold);
    - ``strategy``: a name from ``bloodssl.active.STRATEGIES`` or a strategy object;
    - ``budget``: images the oracle labels per round (0: no active learning);
    - ``rounds``: query/pseudo-label/retrain rounds after round 0;
    - ``threshold``: pseudo-label confidence, one number or one per class (``None``: no SSL);
    - ``top_k_per_class``: at most this many pseudo-labels per predicted class;
    - ``human_share``: in rounds with pseudo-labels, repeat the human-labelled images so
      they make at least this share of the training samples (``None``: each once), so a
      few hundred hard, queried labels are not drowned by thousands of easy pseudo-labels;
    - ``finetune``: learner parameters for rounds >= 1, e.g. ``{"epochs": 3}`` (warm-started
      unless it says ``"warm_start": False``: a fresh student each round, as in the paper);
    - ``oracle``: ``SimulatedOracle``/``FileOracle``; ``None`` answers from ``fit``'s ``y_true``;
    - ``pool_views``: views averaged to predict the pool for queries and pseudo-labels
      (a key of ``VIEWS``; ``None``: the learner's ``tta``); four rotations cost half the
      eight dihedral views and pick nearly the same pseudo-labels;
    - ``embeddings``: fixed (N, D) features for the strategies (e.g. self-supervised);
      ``None`` uses the learner's own, recomputed each round;
    - ``state_dir``: where checkpoints and ``state.json`` go (``None``: nothing is saved);
    - ``initial_checkpoint``: round 0's checkpoint, shared by loops that start alike;
    - ``seed``: seeds the query strategy (the learner has its own ``seed``).
    """

    def __init__(
        self,
        learner: CNNClassifier | None = None,
        *,
        strategy: str | Strategy = "least_confidence",
        budget: int = 40,
        rounds: int = 3,
        threshold: float | np.ndarray | None = 0.97,
        top_k_per_class: int | None = None,
        human_share: float | None = None,
        pool_views: str | None = None,
        finetune: dict | None = None,
        oracle=None,
        embeddings: np.ndarray | None = None,
        state_dir: str | os.PathLike | None = None,
        initial_checkpoint: str | os.PathLike | None = None,
        seed: int = 0,
        progress: bool = True,
    ):
        self.learner = learner
        self.strategy = strategy
        self.budget = budget
        self.rounds = rounds
        self.threshold = threshold
        self.top_k_per_class = top_k_per_class
        self.human_share = human_share
        self.pool_views = pool_views
        self.finetune = finetune
        self.oracle = oracle
        self.embeddings = embeddings
        self.state_dir = state_dir
        self.initial_checkpoint = initial_checkpoint
        self.seed = seed
        self.progress = progress

    # -- bookkeeping -----------------------------------------------------------------------

    def _checkpoint(self, round_: int) -> Path | None:
        if round_ == 0 and self.initial_checkpoint is not None:
            return Path(self.initial_checkpoint)
        return None if self.state_dir is None else Path(self.state_dir) / f"round{round_}.pt"

    def _signature(self, learner, X, y, eval_set) -> str:
        skip = {"learner", "oracle", "embeddings", "state_dir", "initial_checkpoint", "rounds", "progress"}
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in skip}
        params["strategy"] = repr(get_strategy(self.strategy)) if self.budget else None
        params["threshold"] = np.asarray(self.threshold).tolist() if self.threshold is not None else None
        params["learner"] = {k: v for k, v in learner.get_params().items()
                             if k not in {"checkpoint", "progress", "num_threads"}}  # fmt: skip
        data = fingerprint(X, y, *(eval_set or ()), self.embeddings)
        return signature(params, data)

    def _load_state(self, signature: str) -> dict:
        """The saved state of this run, or a fresh one when there is none or it is another
        run's (warned, then overwritten). A state that cannot be read raises ``OracleError``
        and is left alone: it holds the rounds people labelled, so only they may remove it."""
        fresh = {"signature": signature, "rounds": [], "pending": None}
        path = None if self.state_dir is None else Path(self.state_dir) / STATE_FILE
        if path is None or not path.is_file():
            return fresh
        fix = (f"It records the rounds labelled so far, so it is not overwritten. Fix: restore it from a backup, "
               f"or delete {path} to start the loop afresh (labels already in a FileOracle's CSV are read "
               "again).")  # fmt: skip
        try:
            state = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise OracleError(f"{path} is not a readable loop state (truncated or not JSON: {error}). {fix}") from error
        if not _is_state(state):
            found = f"the keys {sorted(state)}" if isinstance(state, dict) else f"a JSON {type(state).__name__}"
            raise OracleError(f"{path} is JSON but not a loop state: expected an object with signature, rounds (a "
                              f"list of rounds) and pending, found {found}. {fix}")  # fmt: skip
        if state["signature"] != signature:
            warnings.warn(f"{self.state_dir}/{STATE_FILE} was written for other parameters or data; "
                          "starting the loop afresh and overwriting it.", stacklevel=3)  # fmt: skip
            return fresh
        return state

    def _save_state(self, state: dict) -> None:
        if self.state_dir is not None:
            with atomic_path(Path(self.state_dir) / STATE_FILE) as tmp:
                tmp.write_text(json.dumps(state, default=_jsonable))

    # -- fitting ---------------------------------------------------------------------------

    def _validate(self) -> None:
        if self.rounds < 0 or self.budget < 0:
            raise ValueError(f"rounds and budget must be >= 0, got rounds={self.rounds}, budget={self.budget}")
        if self.budget:
            get_strategy(self.strategy)
        if self.human_share is not None and not 0 < self.human_share < 1:
            raise ValueError(f"human_share must be in (0, 1), got {self.human_share}; e.g. 0.25, or None")
        if self.threshold is None and self.budget == 0 and self.rounds > 0:
            raise ValueError("with threshold=None and budget=0 a round adds nothing; set a threshold (SSL), "
                             "a budget (AL), or rounds=0 (baseline)")  # fmt: skip

    def fit(self, X, y, *, eval_set: tuple | None = None, report_set: tuple | None = None, y_true=None):
        """Run round 0 and ``rounds`` query/pseudo-label/retrain rounds on the pool ``X``.

        ``y`` holds the starting labels (-1 for unlabelled). ``eval_set=(X_val, y_val)``
        selects each round's epoch; ``report_set=(X_test, y_test)`` is evaluated for the
        log only (each round's ``Evaluation`` computed in this call, probabilities included,
        is kept in ``report_evaluations_``); ``y_true`` (true pool labels) answers queries
        when ``oracle`` is None and measures the accuracy of the pseudo-labels. Raises
        ``LabelsPending`` when a ``FileOracle`` lacks labels; the state is saved, so calling
        ``fit`` again resumes.
        """
        self._validate()
        X = np.asarray(X)
        learner = clone(self.learner if self.learner is not None else default_learner())
        human = as_labels(y, len(X), learner.n_classes, "y")
        truth = None if y_true is None else as_labels(y_true, len(X), learner.n_classes, "y_true")
        # every round's network gets every class the labels, the answers or the validation split hold
        learner.set_params(n_classes=infer_n_classes(learner.n_classes, human, truth, *(eval_set or ())[1:]))
        oracle = self.oracle
        if oracle is None and self.budget and self.rounds:
            if truth is None:
                raise ValueError("the loop needs someone to label its queries: pass y_true= (simulated oracle) "
                                 "or oracle=FileOracle(path, n_images) for a person")  # fmt: skip
            oracle = SimulatedOracle(truth)
        if self.embeddings is not None and len(self.embeddings) != len(X):
            raise ValueError(f"embeddings has {len(self.embeddings)} rows for {len(X)} pool images")
        strategy = get_strategy(self.strategy) if self.budget else None
        state = self._load_state(self._signature(learner, X, human, eval_set))
        self.history_, self.queries_, self.report_evaluations_ = [], {}, {}

        learner.set_params(checkpoint=self._checkpoint(0))
        learner.fit(X, human, eval_set=eval_set)
        if not state["rounds"]:
            state["rounds"].append(self._record(0, learner, human, (), (), 0.0, truth, report_set))
            self._save_state(state)
        self.history_.append(state["rounds"][0])

        bar = tqdm(range(1, self.rounds + 1), desc="rounds", unit="round", disable=not self.progress, leave=False)
        for round_ in bar:
            if round_ < len(state["rounds"]):  # done before: replay its labels; the fit reloads its checkpoint
                record = state["rounds"][round_]
            else:
                pending = state["pending"]
                if pending is None or pending["round"] != round_:
                    pending = self._propose(round_, learner, X, human, strategy)
                    state["pending"] = pending
                    self._save_state(state)
                    if len(pending["queried"]):
                        oracle.request(pending["queried"], np.asarray(pending["query_proba"]))
                queried = np.asarray(pending["queried"], dtype=np.int64)
                answers = oracle.label(queried) if len(queried) else np.zeros(0, np.int64)
                record = {**pending, "queried_labels": answers.tolist()}
            human[record["queried"]] = record["queried_labels"]
            train_labels = human.copy()
            train_labels[record["pseudo"]] = record["pseudo_labels"]
            learner.set_params(**{"warm_start": True, **(self.finetune or {}), "checkpoint": self._checkpoint(round_)})
            learner.fit(*self._training_set(X, human, train_labels), eval_set=eval_set)
            if round_ == len(state["rounds"]):
                log = self._record(round_, learner, human, record["pseudo"], record["pseudo_labels"],
                                   record["pool_seconds"], truth, report_set)  # fmt: skip
                record = {k: v for k, v in record.items() if k != "query_proba"}
                state["rounds"].append({**record, **log})
                state["pending"] = None
                self._save_state(state)
            self.history_.append(state["rounds"][round_])
            self.queries_[round_] = np.asarray(record["queried"], dtype=np.int64)
            bar.set_postfix(labels=int((human >= 0).sum()), test=self.history_[-1]["test"].get("accuracy"))

        self.learner_ = learner
        self.labels_ = human
        self.classes_ = learner.classes_
        return self

    def _training_set(self, X, human, train_labels) -> tuple[np.ndarray, np.ndarray]:
        """The pool with its labels, plus repeats of the human-labelled images for ``human_share``."""
        people = np.flatnonzero(human >= 0)
        n_pseudo = int((train_labels >= 0).sum()) - len(people)
        if self.human_share is None or n_pseudo == 0:
            return X, train_labels
        extra = math.ceil(self.human_share / (1 - self.human_share) * n_pseudo / len(people)) - 1
        if extra < 1:
            return X, train_labels
        repeats = np.tile(people, extra)
        return np.concatenate([X, X[repeats]]), np.concatenate([train_labels, human[repeats]])

    def _propose(self, round_: int, learner, X, human, strategy) -> dict:
        """Round ``round_``'s queries and pseudo-labels from the current model's pool predictions."""
        start = time.perf_counter()
        samples, features = pool_predictions(learner, X, self.pool_views)
        proba = samples.mean(0)
        candidates = np.flatnonzero(human < 0)
        queried = np.zeros(0, np.int64)
        if strategy is not None:
            embeddings = self.embeddings if self.embeddings is not None else features
            rng = np.random.default_rng([self.seed, round_])
            queried = np.sort(strategy(samples, embeddings, candidates, self.budget, rng))
        pseudo, pseudo_labels = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self.threshold is not None:
            eligible = np.setdiff1d(candidates, queried)
            pseudo, pseudo_labels = select_confident(proba, self.threshold, candidates=eligible,
                                                     top_k_per_class=self.top_k_per_class)  # fmt: skip
        return {"round": round_, "queried": queried.tolist(), "query_proba": proba[queried].tolist(),
                "pseudo": pseudo.tolist(), "pseudo_labels": pseudo_labels.tolist(),
                "pool_seconds": time.perf_counter() - start}  # fmt: skip

    def _record(self, round_, learner, human, pseudo, pseudo_labels, pool_seconds, truth, report_set):
        """The log of one round: labels used, pseudo-labels and their accuracy, val/test metrics."""
        start = time.perf_counter()
        pseudo = np.asarray(pseudo, dtype=np.int64)
        record = {
            "round": round_,
            "n_labels": int((human >= 0).sum()),
            "n_pseudo": len(pseudo),
            "pseudo_accuracy": float(np.mean(truth[pseudo] == np.asarray(pseudo_labels)))
            if truth is not None and len(pseudo) else float("nan"),
            "fit_seconds": learner.fit_seconds_,
            "train_images_per_second": learner.train_images_per_second_,
            "best_epoch": learner.best_epoch_,
        }  # fmt: skip
        best_val = [r["val_accuracy"] for r in learner.history_ if "val_accuracy" in r]
        record["val"] = {"accuracy": max(best_val)} if best_val else {}  # the epoch selection's score (no TTA)
        if report_set is not None:
            evaluation = evaluate(report_set[1], pool_predictions(learner, report_set[0])[0].mean(0))
            record["test"], self.report_evaluations_[round_] = evaluation.metrics, evaluation
        else:
            record["test"] = {}
        record["seconds"] = learner.fit_seconds_ + pool_seconds + time.perf_counter() - start
        return record

    # -- prediction ------------------------------------------------------------------------

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the last round's model."""
        return self.learner_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.learner_.predict(X)

    def transform(self, X) -> np.ndarray:
        """Embeddings of the last round's model."""
        return self.learner_.transform(X)


def _is_state(state) -> bool:
    """Whether ``state`` (parsed JSON) has the shape ``_save_state`` writes."""
    return (isinstance(state, dict) and isinstance(state.get("signature"), str)
            and isinstance(state.get("rounds"), list) and all(isinstance(r, dict) for r in state["rounds"])
            and "pending" in state and (state["pending"] is None or isinstance(state["pending"], dict)))  # fmt: skip


def _jsonable(value):
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to the loop state")
