"""Labelled text data: the bundled metaverse intents and users' CSV / JSONL / parquet files."""

from guard.data.loader import (
    BUNDLED,
    DataSplits,
    TextDataset,
    bundled_dir,
    load_eval_data,
    load_file,
    load_splits,
)

__all__ = [
    "BUNDLED",
    "DataSplits",
    "TextDataset",
    "bundled_dir",
    "load_eval_data",
    "load_file",
    "load_splits",
]
