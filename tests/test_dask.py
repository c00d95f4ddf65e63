"""GridSearchCV over a ``dask.distributed.LocalCluster`` of 2 workers, through joblib's
Dask backend: the README's example, run as written. Skipped only without the dask extra."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed", reason="the dask extra is missing: pip install 'anyrnn[dask]'")

ROOT = Path(__file__).resolve().parents[1]


def test_readme_grid_search_over_a_dask_cluster():
    from distributed import get_task_stream

    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- dask example -->\n```py\n(.*?)```", text, flags=re.S)
    assert match, "README.md lost its Dask example"
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(24, 4, 3))
    y_train = (X_train[:, :, 0].sum(axis=1) > 0).astype(int)
    code = match.group(1).replace(
        "    with joblib.parallel_backend",
        "    with get_task_stream() as ts, joblib.parallel_backend",
    )
    ns = {"X_train": X_train, "y_train": y_train, "get_task_stream": get_task_stream}
    exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - our own README
    search = ns["search"]
    # 4 candidates x 2 folds: 8 fits ran as tasks on the cluster's workers
    calls = [
        int(m.group(1))
        for t in ns["ts"].data
        if (m := re.search(r"_fit_and_score_(\d+)_calls", str(t["key"])))
    ]
    assert sum(calls) == 8, [str(t["key"]) for t in ns["ts"].data]
    assert all(str(t["worker"]).startswith("inproc://") for t in ns["ts"].data)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    # the same search in this process gives the same scores (same random_state)
    from sklearn.model_selection import GridSearchCV

    from anyrnn import RNNClassifier

    serial = GridSearchCV(RNNClassifier(epochs=3, random_state=0), ns["grid"], cv=2, n_jobs=1).fit(
        X_train, y_train
    )
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
