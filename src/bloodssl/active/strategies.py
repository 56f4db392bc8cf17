"""Query strategies: which unlabelled images a person should label next.

Every strategy is a small object with one signature,
``strategy(proba, embeddings, candidates, budget, rng) -> indices``:

- ``proba``: class probabilities of the whole pool, shape (N, C), or stochastic samples of
  them, shape (S, N, C) (the loop passes the eight dihedral test-time views; strategies
  that need one distribution average them);
- ``embeddings``: (N, D) features of the whole pool (``None`` for strategies that ignore them);
- ``candidates``: indices of the images that may be queried; every other image of the
  pool counts as labelled (core-set and TypiClust use that to know what is covered);
- ``budget``: how many to pick; ``rng``: a ``numpy.random.Generator``.

The result is ``min(budget, len(candidates))`` distinct pool indices taken from
``candidates``. ``get_strategy(name, **params)`` builds one from ``STRATEGIES``.

Uncertainty scores, core-set and TypiClust come from scikit-activeml, whose
embedding-based strategies take precomputed features and so fit a torch model without a
wrapper. BALD and the diversity-aware strategy are written here (see their docstrings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skactiveml.pool import CoreSet, TypiClust, uncertainty_scores
from sklearn.cluster import KMeans

STRATEGIES: dict[str, type[Strategy]] = {}


def register(name: str):
    """Class decorator: make a strategy available to ``get_strategy`` as ``name``."""

    def decorate(cls: type[Strategy]) -> type[Strategy]:
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return decorate


def get_strategy(strategy: str | Strategy, **params) -> Strategy:
    """The strategy called ``strategy`` (built with ``params``); a strategy object passes through."""
    if isinstance(strategy, Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown query strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy](**params)


def mean_proba(proba: np.ndarray) -> np.ndarray:
    """(N, C) probabilities: ``proba`` itself, or the mean of (S, N, C) samples."""
    proba = np.asarray(proba, dtype=np.float64)
    return proba.mean(0) if proba.ndim == 3 else proba


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so Euclidean distance ranks like cosine distance."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


class Strategy:
    """Base class: checks the arguments, then ``_select`` picks the images."""

    name = "strategy"
    needs_embeddings = False

    def __call__(self, proba, embeddings, candidates, budget: int, rng: np.random.Generator) -> np.ndarray:
        proba = np.asarray(proba)
        if proba.ndim not in (2, 3):
            raise ValueError(f"proba must have shape (N, C) or (samples, N, C); got {proba.shape}")
        n = proba.shape[-2]
        candidates = np.unique(np.asarray(candidates, dtype=np.int64))
        if candidates.size and (candidates.min() < 0 or candidates.max() >= n):
            raise ValueError(f"candidates must index the {n} pool images (0..{n - 1}); "
                             f"got {candidates.min()}..{candidates.max()}")  # fmt: skip
        if budget < 1:
            raise ValueError(f"budget must be at least 1, got {budget}")
        if self.needs_embeddings and (embeddings is None or len(embeddings) != n):
            found = "none" if embeddings is None else f"{len(embeddings)} rows"
            raise ValueError(f"{self.name} needs embeddings of all {n} pool images; got {found}. "
                             "Pass embeddings=(N, D) features, e.g. CNNClassifier.transform(X).")  # fmt: skip
        if budget >= len(candidates):
            return candidates
        chosen = np.asarray(self._select(proba, embeddings, candidates, budget, rng), dtype=np.int64)
        assert len(np.unique(chosen)) == budget and np.isin(chosen, candidates).all(), self.name
        return chosen

    def _select(self, proba, embeddings, candidates, budget, rng) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def top_scores(scores: np.ndarray, candidates: np.ndarray, budget: int) -> np.ndarray:
    """The ``budget`` candidates with the highest ``scores`` (ties: lower index first)."""
    order = np.argsort(-scores[candidates], kind="stable")
    return candidates[order[:budget]]


@register("random")
class RandomSampling(Strategy):
    """Uniformly at random: the baseline every strategy has to beat."""

    def _select(self, proba, embeddings, candidates, budget, rng):
        return rng.choice(candidates, size=budget, replace=False)


@dataclass(repr=False)
class _Uncertainty(Strategy):
    """The most uncertain candidates by scikit-activeml's ``uncertainty_scores``."""

    method = "least_confident"

    def _select(self, proba, embeddings, candidates, budget, rng):
        return top_scores(uncertainty_scores(mean_proba(proba), method=self.method), candidates, budget)


@register("least_confidence")
class LeastConfidence(_Uncertainty):
    """Lowest top-class probability (the strategy of Thanushika et al.)."""

    method = "least_confident"


@register("margin")
class Margin(_Uncertainty):
    """Smallest gap between the two most probable classes."""

    method = "margin_sampling"


@register("entropy")
class Entropy(_Uncertainty):
    """Highest entropy of the predicted distribution."""

    method = "entropy"


def bald_scores(samples: np.ndarray) -> np.ndarray:
    """Mutual information between the label and the stochastic sample: H[mean p] - mean H[p]."""
    samples = np.clip(np.asarray(samples, dtype=np.float64), 1e-12, 1)
    mean = samples.mean(0)
    return -(mean * np.log(mean)).sum(1) + (samples * np.log(samples)).sum(2).mean(0)


@register("bald")
class BALD(Strategy):
    """Highest BALD score over stochastic predictions, shape (S, N, C).

    Our CNNs have no dropout, so the stochastic forward passes are the eight dihedral
    test-time views the model was trained to be invariant to (BALD over test-time
    augmentation): images whose views disagree are the ones the model has not yet made
    sense of. Written here because scikit-activeml's BALD classes expect an ensemble of
    fitted estimators and its ``batch_bald`` is BatchBALD, whose joint-entropy search
    costs far more than a top-k over ~12k images needs.
    """

    def _select(self, proba, embeddings, candidates, budget, rng):
        if proba.ndim != 3 or len(proba) < 2:
            raise ValueError(f"bald needs several stochastic predictions, shape (samples, N, C); got {proba.shape}. "
                             "Predict with tta='dihedral' (the loop's default) to get eight views.")  # fmt: skip
        return top_scores(bald_scores(proba), candidates, budget)


def _labelled_mask(n: int, candidates: np.ndarray) -> np.ndarray:
    """scikit-activeml's ``y``: 0 for the covered images, -1 for the candidates."""
    y = np.zeros(n, dtype=np.int64)
    y[candidates] = -1
    return y


@register("coreset")
class CoreSetStrategy(Strategy):
    """Core-set (Sener and Savarese, 2018): greedy k-center on unit-length embeddings,
    seeded by the labelled images, so each pick is the image farthest from everything
    labelled so far (scikit-activeml's ``CoreSet``)."""

    needs_embeddings = True

    def _select(self, proba, embeddings, candidates, budget, rng):
        query = CoreSet(missing_label=-1, random_state=_seed(rng))
        return query.query(unit_rows(embeddings), _labelled_mask(len(embeddings), candidates),
                           candidates=candidates, batch_size=budget)  # fmt: skip


@dataclass(repr=False)
@register("typiclust")
class TypiClustStrategy(Strategy):
    """TypiClust (Hacohen et al., 2022), the cold-start strategy for tiny budgets: k-means
    into (labelled + budget) clusters of the embeddings, then the most typical image (the
    densest, by its ``k`` nearest neighbours) of each of the largest clusters that hold no
    labelled image (scikit-activeml's ``TypiClust``). Works on any embeddings, e.g.
    self-supervised ones passed to the loop."""

    k: int = 20
    needs_embeddings = True

    def _select(self, proba, embeddings, candidates, budget, rng):
        query = TypiClust(missing_label=-1, random_state=_seed(rng), k=self.k, cluster_algo_dict={"n_init": 1})
        return query.query(unit_rows(embeddings), _labelled_mask(len(embeddings), candidates),
                           candidates=candidates, batch_size=budget)  # fmt: skip


@dataclass(repr=False)
@register("cluster_margin")
class ClusterMargin(Strategy):
    """Diversity-aware uncertainty (after Cluster-Margin, Citovsky et al., 2021): take the
    ``pool_factor * budget`` candidates with the smallest margin, k-means them into
    ``budget`` clusters on unit-length embeddings and query the most uncertain image of
    each cluster, so a batch is not spent on near-duplicates of one confusing cell.
    Written here because scikit-activeml's nearest relative (``Clue``) refits a
    scikit-activeml classifier, while our model's predictions are already computed."""

    pool_factor: int = 10
    needs_embeddings = True

    def _select(self, proba, embeddings, candidates, budget, rng):
        scores = uncertainty_scores(mean_proba(proba), method="margin_sampling")
        uncertain = top_scores(scores, candidates, min(len(candidates), self.pool_factor * budget))
        clusters = KMeans(budget, n_init=1, random_state=_seed(rng)).fit_predict(unit_rows(embeddings[uncertain]))
        chosen = [top_scores(scores, uncertain[clusters == c], 1)[0] for c in np.unique(clusters)]
        if len(chosen) < budget:  # k-means may leave clusters empty; fill with the next most uncertain
            rest = np.setdiff1d(uncertain, chosen)
            chosen += list(top_scores(scores, rest, budget - len(chosen)))
        return np.array(chosen)
