"""Two ways to run a bundle's network on uint8 images: torch in fp32 (``TorchBackend``,
the reference) and an exported OpenVINO model (``OpenVINOBackend``), in fp32 or quantised
to int8 by NNCF's post-training quantisation (``export_openvino``; the ``fast`` extra).

Both run the same ``Deployed`` module: uint8 (N, H, W, C) images in, ``(logits,
embeddings)`` out, so the conversion to floats happens inside the compiled graph and the
two paths can be compared image by image. OpenVINO rather than ONNX Runtime: its int8
convolutions take the GELU after them as a fused step, where ONNX Runtime's quantised graph
runs each GELU in fp32 between a dequantise and a quantise (``make bench`` measures every
model on each backend here).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bloodssl.core.hashing import weights_fingerprint
from bloodssl.core.io import md5sum
from bloodssl.models import ImageClassifier

#: where an exported model keeps the fingerprint of its weights (OpenVINO runtime info)
WEIGHTS_KEY = ["bloodssl", "weights"]


class Deployed(nn.Module):
    """A classifier that takes uint8 (N, H, W, C) images and returns ``(logits, embeddings)``."""

    def __init__(self, model: ImageClassifier):
        super().__init__()
        self.model = model.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(images.permute(0, 3, 1, 2).float() / 255.0)
        return self.model.head(features), features


class TorchBackend:
    """The network in torch fp32, channels-last, in batches of ``batch_size``, on ``threads``
    torch threads (default: the process's count when built), set for each call and restored
    after: the same count gives the same sums, wherever the backend runs."""

    def __init__(self, model: ImageClassifier, batch_size: int = 256, threads: int | None = None):
        self.module = Deployed(model).to(memory_format=torch.channels_last)
        self.batch_size, self.threads = batch_size, threads or torch.get_num_threads()

    def describe(self) -> dict:
        return {"backend": "torch", "precision": "fp32", "threads": self.threads}

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and embeddings of uint8 ``images`` (N, H, W, C)."""
        logits, features = [], []
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for start in range(0, len(images), self.batch_size):
                batch = torch.from_numpy(np.require(images[start : start + self.batch_size], requirements=["C", "W"]))
                out = self.module(batch)
                logits.append(out[0].numpy())
                features.append(out[1].numpy())
        finally:
            torch.set_num_threads(before)
        return _joined(logits, features, self.module.model)


def export_openvino(
    model: ImageClassifier,
    path: str | os.PathLike,
    calibration_images: np.ndarray | None = None,
    image_shape: tuple[int, int, int] = (28, 28, 3),
) -> Path:
    """Write ``model`` as an OpenVINO model (``path``, an ``.xml`` with its ``.bin``): fp32,
    or int8 when ``calibration_images`` (uint8 training images) are given for NNCF to choose
    the quantisation ranges, with NNCF's ``MIXED`` preset (asymmetric activations) and its
    full bias correction (notebook 08 measures the test accuracy this keeps). The model
    records the fingerprint of the weights it came from (``WEIGHTS_KEY``), so it cannot be
    paired with another bundle. Written to a temporary folder and moved into place, the
    ``.bin`` before the ``.xml``: an interrupted export leaves no half-written pair.
    ``image_shape`` is (height, width, channels). Returns the ``.xml`` path."""
    import openvino as ov

    path = Path(path)
    if path.suffix != ".xml":
        raise ValueError(f"an OpenVINO model is an .xml file (with a .bin beside it); got {path}")
    example = torch.zeros((1, *image_shape), dtype=torch.uint8)
    converted = ov.convert_model(Deployed(model), example_input=example, input=[(-1, *image_shape)])
    if calibration_images is not None:
        import nncf

        batches = [calibration_images[i : i + 64] for i in range(0, len(calibration_images), 64)]
        converted = nncf.quantize(converted, nncf.Dataset(batches), subset_size=len(batches),
                                  preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=False)  # fmt: skip
    converted.set_rt_info(weights_fingerprint(model), WEIGHTS_KEY)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        staged = Path(folder) / path.name
        ov.save_model(converted, staged, compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(staged, path)
    return path


def calibration_images(images: np.ndarray, n: int = 2000, seed: int = 0) -> np.ndarray:
    """``n`` images drawn at random (without replacement) to calibrate an int8 export."""
    return images[np.random.default_rng(seed).permutation(len(images))[:n]]


class OpenVINOBackend:
    """An exported model compiled for this CPU, run as ``streams`` parallel requests of
    ``batch_size`` images (two streams of one thread each kept both cores busiest)."""

    def __init__(self, path: str | os.PathLike, streams: int = 2, batch_size: int = 128, threads: int | None = None):
        import openvino as ov

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} does not exist; write it with export_openvino first")
        self.batch_size, self.streams, self.threads = batch_size, streams, threads or torch.get_num_threads()
        # f32 for every layer that is not quantised (all of an fp32 export): on a CPU with bf16 instructions
        # (AVX512_BF16, AMX) OpenVINO would otherwise run them in bfloat16, which moved the CNN's logits by up to
        # 0.04 from torch's
        config = {"NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32"}
        core = ov.Core()
        model = core.read_model(self.path)
        #: the fingerprint of the weights it was exported from (None for a model exported elsewhere)
        self.weights = model.get_rt_info(WEIGHTS_KEY).astype(str) if model.has_rt_info(WEIGHTS_KEY) else None
        self.compiled = core.compile_model(model, "CPU", config)
        self.queue = ov.AsyncInferQueue(self.compiled, streams)

    def describe(self) -> dict:
        precision = "int8" if "FakeQuantize" in self.path.read_text(errors="ignore") else "fp32"
        return {"backend": "openvino", "precision": precision, "model_md5": md5sum(self.path.with_suffix(".bin")),
                "threads": self.threads, "streams": self.streams}  # fmt: skip

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits and embeddings of uint8 ``images`` (N, H, W, C)."""
        starts = list(range(0, len(images), self.batch_size))
        logits: list[np.ndarray | None] = [None] * len(starts)
        features: list[np.ndarray | None] = [None] * len(starts)

        def done(request, index: int) -> None:
            logits[index] = request.get_output_tensor(0).data.copy()
            features[index] = request.get_output_tensor(1).data.copy()

        self.queue.set_callback(done)
        for index, start in enumerate(starts):
            self.queue.start_async({0: np.ascontiguousarray(images[start : start + self.batch_size])}, index)
        self.queue.wait_all()
        if not starts:
            return np.zeros((0, self.compiled.output(0).partial_shape[1].get_length()), np.float32), \
                np.zeros((0, self.compiled.output(1).partial_shape[1].get_length()), np.float32)  # fmt: skip
        return np.concatenate(logits), np.concatenate(features)


def _joined(logits: list, features: list, model: ImageClassifier) -> tuple[np.ndarray, np.ndarray]:
    if not logits:
        return np.zeros((0, model.head.out_features), np.float32), np.zeros((0, model.embedding_dim), np.float32)
    return np.concatenate(logits), np.concatenate(features)
