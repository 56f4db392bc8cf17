"""Data: the MedMNIST files and their splits (``medmnist``), labelled subsets (``splits``)
and batched tensor augmentation (``augment``)."""

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
    Split,
    default_path,
    fetch,
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
    "Split",
    "default_path",
    "fetch",
    "load_split",
    "load_splits",
    "to_tensor",
    "verify_md5",
]
