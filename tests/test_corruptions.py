"""MedMNIST-C's corruptions of BloodMNIST (``bloodssl.data.corruptions``) on real test cells:
every one at every severity, the two fixed for numpy 2, seeding and clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bloodssl import data
from bloodssl.data import corruptions
from tests.conftest import needs_real_data

try:
    BLOOD = corruptions.corruptions("bloodmnist")
except ImportError as missing:  # ImageMagick's library is a Debian package, not a wheel
    pytestmark = pytest.mark.skip(reason=str(missing))
    BLOOD = {}


@pytest.fixture(scope="module")
def cells() -> np.ndarray:
    return data.load_split("test").images[:6] if data.default_path().is_file() else \
        np.random.default_rng(0).integers(0, 256, (6, 28, 28, 3), dtype=np.uint8)  # fmt: skip


def test_bloodmnist_has_the_eleven_corruptions_of_the_paper():
    assert sorted(BLOOD) == sorted(["pixelate", "jpeg_compression", "defocus_blur", "motion_blur", "brightness_up",
                                    "brightness_down", "contrast_up", "contrast_down", "saturate", "stain_deposit",
                                    "bubble"])  # fmt: skip


@needs_real_data
@pytest.mark.parametrize("name", sorted(BLOOD))
def test_every_corruption_runs_at_every_severity_and_changes_the_cells(name, cells):
    previous = None
    for severity in range(corruptions.SEVERITIES):
        out = corruptions.corrupt(cells, name, severity)
        assert out.shape == cells.shape and out.dtype == np.uint8
        assert not np.array_equal(out, cells), f"{name} at severity {severity} left the cells as they were"
        previous = out
    # the strongest level moves the pixels further than the weakest
    weakest = np.abs(corruptions.corrupt(cells, name, 0).astype(int) - cells).mean()
    assert np.abs(previous.astype(int) - cells).mean() >= weakest


def test_the_two_corruptions_fixed_for_numpy_2_keep_the_packages_parameters(cells):
    from medmnistc.corruptions.registry import CORRUPTIONS_DS

    for name in ("motion_blur", "stain_deposit"):
        assert type(BLOOD[name]) is not type(CORRUPTIONS_DS["bloodmnist"][name])  # ours, not the package's
        assert BLOOD[name].severity_params == CORRUPTIONS_DS["bloodmnist"][name].severity_params
    stained = corruptions.corrupt(cells, "stain_deposit", 4).astype(int)
    darker = (cells.astype(int) - stained).mean(axis=(1, 2, 3))
    assert (darker > 1).all()  # ink darkens every cell (resampling back to 28 px blurs each stain)


def test_the_same_seed_gives_the_same_images_and_the_global_state_is_restored(cells):
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002 - the state the corruptions must leave as they found it
    expected_python, expected_numpy = random.random(), np.random.random()  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    first = corruptions.corrupt(cells, "bubble", 2, seed=7)
    assert random.random() == expected_python and np.random.random() == expected_numpy  # noqa: NPY002
    assert np.array_equal(first, corruptions.corrupt(cells, "bubble", 2, seed=7))
    assert not np.array_equal(first, corruptions.corrupt(cells, "bubble", 2, seed=8))


def test_bad_input_names_the_problem(cells):
    with pytest.raises(ValueError, match="unknown corruption 'fog' for bloodmnist; choose one of pixelate"):
        corruptions.corrupt(cells, "fog", 0)
    with pytest.raises(ValueError, match="severity counts from 0 to 4 as in medmnistc; got 5"):
        corruptions.corrupt(cells, "bubble", 5)
    with pytest.raises(ValueError, match="images must be uint8"):
        corruptions.corrupt(cells.astype(np.float32), "bubble", 0)
    with pytest.raises(ValueError, match="medmnistc defines no corruptions for 'organmnist3d'"):
        corruptions.corruptions("organmnist3d")


@needs_real_data
def test_the_training_copy_gives_each_cell_the_corruption_it_drew_and_is_seeded():
    cells = data.load_split("test").images[:66]
    copy, chosen = corruptions.augmented(cells, seed=3)
    names = list(BLOOD)
    assert copy.shape == cells.shape and copy.dtype == np.uint8
    assert set(chosen) == set(range(len(names)))  # 66 draws cover all eleven
    brightness = copy.astype(float).mean((1, 2, 3)) - cells.astype(float).mean((1, 2, 3))
    assert (brightness[chosen == names.index("brightness_up")] > 0).all()
    assert (brightness[chosen == names.index("brightness_down")] < 0).all()
    spread = copy.astype(float).std((1, 2, 3)) - cells.astype(float).std((1, 2, 3))
    assert (spread[chosen == names.index("contrast_down")] < 0).all()
    again, drawn_again = corruptions.augmented(cells, seed=3)
    assert np.array_equal(copy, again) and np.array_equal(chosen, drawn_again)
    assert not np.array_equal(corruptions.augmented(cells, seed=4)[0], copy)
    with pytest.raises(ValueError, match="must be uint8"):
        corruptions.augmented(cells.astype(np.float32))
