"""Materials datasets with their published splits: perov_5, carbon_24, carbon_24_unique, bto_400K, mp_20.

    >>> from atomsmith import datasets
    >>> datasets.available()
    ['perov_5', 'carbon_24', 'carbon_24_unique', 'bto_400K', 'mp_20']
    >>> train = datasets.load("perov_5", "train")            # list[Crystal]; parsed once, then cached
    >>> train[0].properties["heat_ref"]                      # eV
"""

from atomsmith.datasets.csv_reader import CsvLayout, read_csv
from atomsmith.datasets.errors import (
    ChecksumMismatchError,
    DataNotFoundError,
    DatasetError,
    DownloadError,
    MalformedRowError,
    SplitUnavailableError,
    UnknownDatasetError,
)
from atomsmith.datasets.loader import DatasetInfo, available, info, load, load_packed, locate, statistics, summarize
from atomsmith.datasets.packed import PackedCrystals
from atomsmith.datasets.paths import cache_dir, data_dirs, sha256_file
from atomsmith.datasets.registry import REGISTRY, DatasetSpec, SplitFile
from atomsmith.datasets.splits import random_split, split_indices

__all__ = [
    "REGISTRY",
    "ChecksumMismatchError",
    "CsvLayout",
    "DataNotFoundError",
    "DatasetError",
    "DatasetInfo",
    "DatasetSpec",
    "DownloadError",
    "MalformedRowError",
    "PackedCrystals",
    "SplitFile",
    "SplitUnavailableError",
    "UnknownDatasetError",
    "available",
    "cache_dir",
    "data_dirs",
    "info",
    "load",
    "load_packed",
    "locate",
    "random_split",
    "read_csv",
    "sha256_file",
    "split_indices",
    "statistics",
    "summarize",
]
