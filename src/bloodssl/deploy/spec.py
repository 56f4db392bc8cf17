"""A labelling job's predictor as a small picklable recipe, built where it runs: a Ray
actor compiles its own copy of the model instead of receiving a compiled one."""

from __future__ import annotations

from dataclasses import dataclass

from bloodssl.deploy.backends import OpenVINOBackend, TorchBackend
from bloodssl.deploy.bundle import Bundle
from bloodssl.deploy.predictor import BatchPredictor


@dataclass(frozen=True)
class PredictorSpec:
    """``bundle``: a saved ``Bundle``; ``exported``: its OpenVINO ``.xml`` (``export_openvino``)
    or None for torch fp32; ``threads`` per predictor (the same count gives the same
    floating-point sums, so a local and a Ray run of one spec give the same labels)."""

    bundle: str
    exported: str | None = None
    threshold: float = 0.9
    embeddings: bool = False
    threads: int = 2
    streams: int = 2

    def build(self) -> BatchPredictor:
        """The predictor on ``threads`` threads (its own: the process's count is left alone)."""
        bundle = Bundle.load(self.bundle)
        if self.exported is None:
            backend = TorchBackend(bundle.model, threads=self.threads)
        else:
            backend = OpenVINOBackend(self.exported, streams=min(self.streams, self.threads), threads=self.threads)
        return BatchPredictor.from_bundle(bundle, backend, threshold=self.threshold, embeddings=self.embeddings)
