"""The README's Python examples run as written (docs that match the code)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = _blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)  # the save/load example writes files
    rng = np.random.default_rng(0)
    ns = {
        # the data the estimator examples assume (X itself comes from the examples)
        "y": rng.normal(size=3),
        "X_train": rng.normal(size=(40, 10, 8)),
        "y_train": rng.integers(0, 3, size=40),
        "X_test": rng.normal(size=(10, 10, 8)),
    }
    for block in blocks:
        exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own README
    assert (tmp_path / "digits.npz").exists()
