"""A SimCLR encoder trained on images without their labels, behind a scikit-learn transformer.

``SimCLREncoder().fit(X)`` learns the fast CNN backbone of ``bloodssl.models`` by
contrasting two augmented views of every training image (NT-Xent loss, Chen et al. 2020);
``transform(X)`` returns the backbone's embeddings. Labels are never read: ``fit`` accepts
``y`` only to fit in a scikit-learn pipeline and ignores it.

Written in plain torch rather than with ``lightly``: lightly 1.6 requires
``pytorch_lightning`` and ``hydra-core`` (checked with ``pip download lightly --no-deps``),
a second training framework for the ~60 lines below. The two views come from
``bloodssl.data.augment`` (dihedral transform, shift, colour jitter, all batched) plus a batched
random resized crop; like ``CNNClassifier``, training checkpoints every epoch (atomically)
and resumes, so a rerun of a finished encoder costs nothing.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from torch import nn
from tqdm.auto import tqdm

from bloodssl import paths, results
from bloodssl.core.checkpoints import load_checkpoint, restore_training, save_checkpoint, training_state
from bloodssl.core.hashing import fingerprint, signature
from bloodssl.core.schedules import lr_factor, set_threads
from bloodssl.data import Split, to_tensor
from bloodssl.data.augment import CellAugment, dihedral
from bloodssl.models import build_model


def random_resized_crop(
    images: torch.Tensor, scale: tuple[float, float], generator: torch.Generator, ratio: float = 4 / 3
) -> torch.Tensor:
    """Crop each image to a random area share in ``scale`` and aspect ratio in
    [1/``ratio``, ``ratio``], resized back to full size (one batched ``grid_sample``)."""
    n = len(images)
    area = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=generator)
    log_ratio = math.log(ratio) * (2 * torch.rand(n, generator=generator) - 1)
    width = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
    height = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    centre_x = (1 - width) * (2 * torch.rand(n, generator=generator) - 1)
    centre_y = (1 - height) * (2 * torch.rand(n, generator=generator) - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def nt_xent(projections: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent loss of ``2n`` projections where rows ``i`` and ``i + n`` are two views of one image."""
    z = F.normalize(projections, dim=1)
    n = len(z) // 2
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets)


class SimCLREncoder(TransformerMixin, BaseEstimator):
    """SimCLR on the images of ``X`` (uint8, N x 28 x 28 x 3); ``transform`` gives embeddings.

    ``crop_scale`` bounds the area of the random crop; ``jitter`` is the brightness,
    contrast and saturation strength of ``CellAugment``; ``temperature`` is NT-Xent's.
    The projection head (a two-layer MLP to ``projection_dim``) is used only by the loss;
    ``transform`` returns the backbone features before it, as the SimCLR paper recommends,
    averaged over the eight flips and quarter turns when ``tta`` (cells have no orientation).
    ``images_per_second_`` counts training images (each passes through two views).
    """

    def __init__(
        self,
        model: str = "cnn",
        epochs: int = 45,
        batch_size: int = 128,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        temperature: float = 0.5,
        projection_dim: int = 64,
        crop_scale: tuple[float, float] = (0.4, 1.0),
        max_shift: int = 2,
        jitter: float = 0.4,
        tta: bool = True,
        seed: int = 0,
        checkpoint: str | os.PathLike | None = None,
        num_threads: int | None = None,
        progress: bool = True,
    ):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.projection_dim = projection_dim
        self.crop_scale = crop_scale
        self.max_shift = max_shift
        self.jitter = jitter
        self.tta = tta
        self.seed = seed
        self.checkpoint = checkpoint
        self.num_threads = num_threads
        self.progress = progress

    def _validate(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[-1] != 3 or X.dtype != np.uint8:
            raise ValueError(f"X must be uint8 images of shape (N, H, W, 3); got {X.shape} {X.dtype}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"epochs must be >= 1 and batch_size >= 2, got {self.epochs}, {self.batch_size}")
        if len(X) < 2:
            raise ValueError(f"SimCLR needs at least 2 images to contrast, got {len(X)}")
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        return X

    def _make_signature(self, X: np.ndarray) -> str:
        skip = {"checkpoint", "num_threads", "progress", "tta"}
        params = {k: v for k, v in self.get_params().items() if k not in skip}
        return signature(params, fingerprint(X))

    def _views(self, images: torch.Tensor, augment: CellAugment, generator: torch.Generator) -> torch.Tensor:
        both = torch.cat([images, images])
        both = random_resized_crop(both, self.crop_scale, generator)
        return augment(both, generator).contiguous(memory_format=torch.channels_last)

    def fit(self, X, y=None) -> SimCLREncoder:
        """Train on every image of ``X``; ``y`` is ignored (no label is used)."""
        X = self._validate(X)
        self.signature_ = self._make_signature(X)  # equal signatures: equal parameters and images
        set_threads(self.num_threads)
        torch.manual_seed(self.seed)
        generator = torch.Generator().manual_seed(self.seed)

        pixels = X.reshape(-1, 3) / 255.0
        mean, std = pixels.mean(0).tolist(), (pixels.std(0) + 1e-6).tolist()
        self.model_ = build_model(self.model, self.projection_dim, mean, std)
        width = self.model_.embedding_dim
        self.model_.head = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Linear(width, self.projection_dim)
        )
        self.model_ = self.model_.to(memory_format=torch.channels_last)

        images = to_tensor(X)
        batch_size = min(self.batch_size, len(X))
        steps_per_epoch = len(X) // batch_size
        total = steps_per_epoch * self.epochs
        optimizer = torch.optim.SGD(self.model_.parameters(), lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay, nesterov=True)  # fmt: skip
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor("onecycle", step, total))
        augment = CellAugment(rotate=True, max_shift=self.max_shift, brightness=self.jitter,
                              contrast=self.jitter, saturation=self.jitter)  # fmt: skip

        state = load_checkpoint(self.checkpoint, self.signature_)
        if state is None:
            state = {"signature": self.signature_, "epoch": 0, "history": [], "seconds": 0.0}
        else:
            restore_training(state, self.model_, optimizer, scheduler, generator)

        bar = tqdm(range(state["epoch"], self.epochs), desc=f"SimCLR {self.model} seed {self.seed}",
                   unit="epoch", disable=not self.progress, leave=False)  # fmt: skip
        for epoch in bar:
            start = time.perf_counter()
            self.model_.train()
            order = torch.randperm(len(X), generator=generator)
            losses = []
            for step in range(steps_per_epoch):
                batch = images[order[step * batch_size : (step + 1) * batch_size]]
                loss = nt_xent(self.model_(self._views(batch, augment, generator)), self.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
            seconds = time.perf_counter() - start
            record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": scheduler.get_last_lr()[0],
                      "train_seconds": seconds,
                      "images_per_second": steps_per_epoch * batch_size / seconds}  # fmt: skip
            state["history"].append(record)
            state["seconds"] += seconds
            state.update(epoch=epoch + 1, **training_state(self.model_, optimizer, scheduler, generator))
            save_checkpoint(self.checkpoint, state)
            bar.set_postfix(loss=f"{record['loss']:.3f}", img_s=f"{record['images_per_second']:.0f}")

        self.model_.eval()
        self.history_ = state["history"]
        self.fit_seconds_ = state["seconds"]
        self.images_per_second_ = float(np.mean([r["images_per_second"] for r in self.history_]))
        return self

    @torch.inference_mode()
    def transform(self, X, batch_size: int = 1024) -> np.ndarray:
        """Backbone embeddings of ``X``, shape (N, embedding_dim)."""
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[-1] != 3 or X.dtype != np.uint8:
            raise ValueError(f"X must be uint8 images of shape (N, H, W, 3); got {X.shape} {X.dtype}")
        self.model_.eval()
        views = [(k, flip) for flip in (False, True) for k in range(4)] if self.tta else [(0, False)]
        out = []
        for start in range(0, len(X), batch_size):
            images = to_tensor(X[start : start + batch_size]).contiguous(memory_format=torch.channels_last)
            out.append(sum(self.model_.features(dihedral(images, k, flip)) for k, flip in views) / len(views))
        return torch.cat(out).numpy() if out else np.zeros((0, self.model_.embedding_dim), np.float32)


def checkpoint_path(model: str, seed: int, profile: str) -> Path:
    """Where the encoder of one (model, seed, profile) lives: ``models/selfsup/simclr-...pt``."""
    return paths.MODELS / "selfsup" / f"simclr-{model}-s{seed}-{profile}.pt"


def train_encoder(train: Split, *, epochs: int, profile: str, seed: int, **params) -> SimCLREncoder:
    """SimCLR for ``epochs`` on the images of ``train`` (its labels are not passed),
    checkpointed under ``profile`` so that every notebook with this seed and profile shares it."""
    params.setdefault("model", "cnn")
    encoder = SimCLREncoder(
        seed=seed, epochs=epochs, checkpoint=checkpoint_path(params["model"], seed, profile), **params
    )
    return encoder.fit(train.images)


def speed_rows(encoder: SimCLREncoder, *, profile: str, seed: int) -> list[dict]:
    """The encoder's training cost as tidy rows on the train split: training images/s (two
    views each; ``train_images_per_second``, the name every notebook uses) and epochs, with
    the wall time of the fit in the ``wall_seconds`` column."""
    keys = dict(method="simclr", model=encoder.model, label_fraction=0.0, n_labels=0, seed=seed, split="train",
                wall_seconds=encoder.fit_seconds_, profile=profile)  # fmt: skip
    metrics = {"train_images_per_second": encoder.images_per_second_, "epochs": len(encoder.history_)}
    return results.rows(metrics, **keys)
