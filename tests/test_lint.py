"""The package and tests pass ruff (the linter is part of the test extras)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install 'anyrnn[test]')")
    paths = [d for d in ("anyrnn", "tests", "benchmarks") if (ROOT / d).is_dir()]
    res = subprocess.run([ruff, "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
