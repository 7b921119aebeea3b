"""Datasets as float32 NCHW arrays: the built-in Fashion-MNIST / digits, an image folder, or an .npz file."""

from edgekd.data.bundle import ArrayDataset, DataBundle
from edgekd.data.loaders import load_data

__all__ = ["ArrayDataset", "DataBundle", "load_data"]
