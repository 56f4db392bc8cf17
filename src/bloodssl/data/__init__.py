"""Data: any 2D MedMNIST dataset's verified file and splits (``medmnist``), labelled subsets (``splits``),
batched tensor augmentation (``augment``), the duplicate audit (``duplicates``) and MedMNIST-C's
corruptions (``corruptions``)."""

from bloodssl.data.fetching import fetch
from bloodssl.data.medmnist import (
    CLASS_NAMES,
    IMAGE_SHAPE,
    N_CLASSES,
    OFFICIAL_MD5,
    SHORT_NAMES,
    SPLIT_SIZES,
    SPLITS,
    BloodMNISTDataset,
    DataError,
    DatasetInfo,
    Split,
    dataset_info,
    default_path,
    flags_2d,
    load_dataset,
    load_split,
    load_splits,
    to_tensor,
    verify_md5,
)

__all__ = [
    "CLASS_NAMES",
    "IMAGE_SHAPE",
    "N_CLASSES",
    "OFFICIAL_MD5",
    "SHORT_NAMES",
    "SPLITS",
    "SPLIT_SIZES",
    "BloodMNISTDataset",
    "DataError",
    "DatasetInfo",
    "Split",
    "dataset_info",
    "default_path",
    "fetch",
    "flags_2d",
    "load_dataset",
    "load_split",
    "load_splits",
    "to_tensor",
    "verify_md5",
]
