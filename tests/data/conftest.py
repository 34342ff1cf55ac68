"""Fixtures for the data tests: a folder of real small images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """cat.png (64 x 48), dog.png (32 x 32), text.png (not an image)."""
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(root / "cat.png")
    Image.new("RGB", (32, 32), (10, 10, 200)).save(root / "dog.png")
    (root / "text.png").write_text("this is not a PNG file")
    return root
