"""MedMNIST-C (Di Salvo et al., 2024; the ``medmnistc`` package): a dataset's corruptions of
image arrays at its five severities, for robustness tests, applied at the 224 px the
package's parameters are set for (``corrupt``).

``medmnistc`` defines each corruption per dataset with five severities, counted 0..4 in its
API (``severity=3`` is the fourth). Two of BloodMNIST's eleven fail on numpy 2 and are
subclassed here with only the failing line changed (their parameters stay the package's):
``motion_blur`` decodes ImageMagick's output with ``np.fromstring``, which numpy 2 refuses
for binary data (``np.frombuffer`` here); ``stain_deposit`` multiplies a uint8 array in
place by a float ink mask, a casting error (float pixels here, rounded back). Corruptions
draw from Python's ``random`` and numpy's global generator; ``corrupt`` seeds both from
``seed`` and restores them, so a corrupted split is the same on every run.
"""

# medmnistc draws from numpy's global generator, so its fixed corruptions here do too (and _seeded seeds it)
# ruff: noqa: NPY002
from __future__ import annotations

import random
from contextlib import contextmanager
from io import BytesIO

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

SEVERITIES = 5
#: the image size (px) medmnistc's corruption parameters are set for: MedMNIST+'s 224 x 224
SIZE = 224
#: corruptions that change each pixel on its own, whatever the image size: applied at the images' own size
POINTWISE = frozenset({"brightness_up", "brightness_down", "contrast_up", "contrast_down", "saturate"})


@contextmanager
def _seeded(seed: int):
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _fixed(name: str, corruption):
    """``corruption`` with the numpy-2 fixes of this module's docstring (others unchanged)."""
    from medmnistc.corruptions import filter as filters
    from medmnistc.corruptions import microscopy

    class MotionBlur(filters.MotionBlur):
        def apply(self, img, severity=-1, augmentation=False):
            radius, sigma = self.severity_params[severity]
            if augmentation:
                radius = np.random.uniform(self.severity_params[0][0], self.severity_params[-1][0])
                sigma = np.random.uniform(self.severity_params[0][1], self.severity_params[-1][1])
            blob = BytesIO()
            img.save(blob, format="PNG")
            wand = filters.MotionImage(blob=blob.getvalue())
            wand.motion_blur(radius=radius, sigma=sigma, angle=np.random.uniform(-45, 45))
            blurred = Image.open(BytesIO(wand.make_blob("png"))).convert(img.mode)
            return np.asarray(blurred, dtype=np.uint8)

    class StainDeposit(microscopy.StainDeposit):
        def apply(self, img, severity=-1, augmentation=False):
            params = self.severity_params
            marks = int(np.random.uniform(params[0], params[-1])) if augmentation else params[severity]
            pixels = np.array(img, dtype=np.float64)
            height, width = pixels.shape[:2]
            inks = self.inks[str(max(3, severity))]
            for _ in range(random.randint(1, marks) if marks > 1 else marks):
                ink = inks[random.randint(0, len(inks) - 1)]
                top = random.randint(10, height - ink.shape[0] - 10)
                left = random.randint(10, width - ink.shape[1] - 10)
                pixels[top : top + ink.shape[0], left : left + ink.shape[1]] *= (1 - ink)[..., None]
            return np.clip(pixels, 0, 255).astype(np.uint8)

    fixes = {"motion_blur": MotionBlur, "stain_deposit": StainDeposit}
    return fixes[name](corruption.severity_params) if name in fixes else corruption


def corruptions(flag: str = "bloodmnist") -> dict:
    """The ``medmnistc`` corruptions of ``flag`` by name (fixed where this module says)."""
    try:
        from medmnistc.corruptions.registry import CORRUPTIONS_DS
    except ImportError as error:  # the package, or ImageMagick's library behind wand, is missing
        fix = "pip install -e '.[robustness]' and sudo apt-get install libmagickwand-dev"
        raise ImportError(f"MedMNIST-C's corruptions need the robustness extra and ImageMagick: {fix}") from error

    if flag not in CORRUPTIONS_DS:
        raise ValueError(f"medmnistc defines no corruptions for {flag!r}; it has {', '.join(CORRUPTIONS_DS)}")
    return {name: _fixed(name, corruption) for name, corruption in CORRUPTIONS_DS[flag].items()}


def corrupt(images: np.ndarray, name: str, severity: int, flag: str = "bloodmnist", seed: int = 0,
            size: int = SIZE, progress: bool = False) -> np.ndarray:  # fmt: skip
    """``images`` (N, H, W, C) uint8 with corruption ``name`` of ``flag`` at ``severity``
    (0..4, medmnistc's count), the same for the same ``seed``. Each image is resized to
    ``size`` px (bicubic), corrupted and resized back (bicubic, antialiased): medmnistc's
    parameters (bubble radii, ink stains, blur kernels) are in pixels of MedMNIST+'s 224 px
    images, where a slide's defects happen before the dataset's downscaling; on 28 px images
    directly some cannot run (a 15 px bubble radius) and the rest are far stronger. The
    ``POINTWISE`` ones (brightness, contrast, saturation) do not depend on the size and run on
    the images as they are (at 224 px, saturation alone took 35 ms an image)."""
    available = corruptions(flag)
    if name not in available:
        raise ValueError(f"unknown corruption {name!r} for {flag}; choose one of {', '.join(available)}")
    if not 0 <= severity < SEVERITIES:
        raise ValueError(f"severity counts from 0 to {SEVERITIES - 1} as in medmnistc; got {severity}")
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, H, W, C); got {images.dtype} {images.shape}")
    corruption = available[name]
    with _seeded(seed):
        return _each(
            images,
            lambda pil: corruption.apply(pil, severity=severity),
            name not in POINTWISE,
            size,
            f"{name} {severity}",
            progress,
        )


def augmented(images: np.ndarray, flag: str = "bloodmnist", seed: int = 0, size: int = SIZE,
              progress: bool = False) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A MedMNIST-C training copy of ``images`` (uint8 (N, H, W, C)): each image under one of
    ``flag``'s corruptions drawn uniformly, at an intensity drawn between its first and last
    severity (medmnistc's training augmentation, ``AugMedMNISTC``, whose ``apply(img,
    augmentation=True)`` this calls), at ``size`` px as in ``corrupt``; and the corruption of
    each image (its index in ``corruptions(flag)``). Unlike ``AugMedMNISTC`` it never draws the
    identity: the clean image is trained on beside its copy. It is computed once per training
    set rather than per batch because ImageMagick's motion blur costs ~0.1 s an image at 224 px,
    two hundred times what the CNN's training step costs it."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, H, W, C); got {images.dtype} {images.shape}")
    available = corruptions(flag)
    names = list(available)
    chosen = np.random.default_rng(seed).integers(len(names), size=len(images))
    out = np.empty_like(images)
    with _seeded(seed):
        for index, name in enumerate(tqdm(names, desc="MedMNIST-C copy", disable=not progress)):
            picked = chosen == index
            out[picked] = _each(images[picked], lambda pil, c=available[name]: c.apply(pil, augmentation=True),
                                name not in POINTWISE, size)  # fmt: skip
    return out, chosen


def _each(images: np.ndarray, apply, spatial: bool, size: int, desc: str = "", progress: bool = False) -> np.ndarray:
    """``apply`` (PIL image -> array) on every image, at ``size`` px when ``spatial`` (bicubic
    up, then bicubic antialiased back down), at the images' own size otherwise."""
    out = np.empty_like(images)
    height, width = images.shape[1:3]
    spatial = spatial and (height, width) != (size, size)
    for i, image in enumerate(tqdm(images, desc=desc, disable=not progress, leave=False)):
        pil = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image)
        large = pil.resize((size, size), Image.Resampling.BICUBIC) if spatial else pil
        corrupted = Image.fromarray(np.asarray(apply(large), dtype=np.uint8))
        small = corrupted.convert(pil.mode).resize((width, height), Image.Resampling.BICUBIC)
        out[i] = np.asarray(small).reshape(image.shape)
    return out
