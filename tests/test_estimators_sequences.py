"""Estimators on real sequence data: unequal lengths, NaN padding, layouts, 2-D input,
depth and directions, weights, warm starts, partial_fit and early stopping."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import anyrnn
from anyrnn import RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier

RNG = np.random.default_rng(0)
#: 30 sequences of 3 to 9 steps, 2 features; label: sign of the sum of feature 0
SEQS = [RNG.normal(size=(int(RNG.integers(3, 10)), 2)) for _ in range(30)]
LABELS = np.array([int(s[:, 0].sum() > 0) for s in SEQS])
T_MAX = max(s.shape[0] for s in SEQS)
SMALL = dict(n_nodes=5, epochs=3, batch_size=8, random_state=0, dtype="float64")


def nan_padded(seqs, t_max=None):
    t_max = t_max or max(s.shape[0] for s in seqs)
    out = np.full((len(seqs), t_max) + seqs[0].shape[1:], np.nan)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out


ARCHS = {
    "simple": dict(),
    "LSTM-2-layers-dropout": dict(cell="LSTM", num_layers=2, dropout=0.3),
    "gru-bidirectional": dict(cell="Gru", bidirectional=True),
    "lstm-2-bidirectional": dict(cell="lstm", num_layers=2, bidirectional=True),
}


@pytest.mark.parametrize("arch", ARCHS.values(), ids=list(ARCHS))
def test_unequal_lengths_equal_each_sequence_alone(arch, tmp_path):
    clf = RNNClassifier(**SMALL, **arch).fit(SEQS, LABELS)
    proba = clf.predict_proba(SEQS)
    alone = np.concatenate([clf.predict_proba([s]) for s in SEQS])
    np.testing.assert_allclose(proba, alone, rtol=0, atol=1e-12)
    # the same data as a NaN-padded array, as (channels, steps) sequences, and refit
    np.testing.assert_array_equal(clf.predict_proba(nan_padded(SEQS)), proba)
    nct = RNNClassifier(**SMALL, **arch, layout="nct").fit([s.T for s in SEQS], LABELS)
    np.testing.assert_array_equal(nct.predict_proba([s.T for s in SEQS]), proba)
    again = RNNClassifier(**SMALL, **arch).fit(nan_padded(SEQS), LABELS)
    assert again.loss_curve_ == clf.loss_curve_
    # a model file round trip keeps the architecture
    clf.save(tmp_path / "m.npz")
    loaded = anyrnn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict_proba(SEQS), proba)
    assert loaded.get_params() == {**clf.get_params(), "device": None}


def test_training_gradient_equals_the_sum_over_sequences_alone():
    """One minibatch of unequal lengths: its loss and gradients are the mean of what each
    sequence gives alone (the masked path changes nothing)."""
    from anyrnn.estimators import _Data

    for arch in ARCHS.values():
        clf = RNNClassifier(**{**SMALL, "epochs": 1}, **arch).fit(SEQS, LABELS)
        net, backend = clf.network_, clf.network_.layers[0]._backend
        arch_drop = arch.get("dropout", 0)
        if arch_drop:
            net.recurrent.dropout = 0.0  # dropout draws differ between the two runs
        panel_x = nan_padded(SEQS[:6])
        lengths = np.array([s.shape[0] for s in SEQS[:6]])
        y = backend.from_host(LABELS[:6, None])
        X = backend.from_host(np.nan_to_num(panel_x))
        data = _Data(X, lengths, y, LABELS[:6], None, False)
        loss = clf._gradient(net, data.batch(np.arange(6), backend))
        grads = [dict(layer.grads) for layer in net.layers]
        total_loss, total = 0.0, None
        for i, s in enumerate(SEQS[:6]):
            one = _Data(
                backend.from_host(s[None]), None, y[i : i + 1], LABELS[i : i + 1], None, False
            )
            total_loss += float(clf._gradient(net, one.batch(None, backend))) / 6
            g = [{k: v / 6 for k, v in layer.grads.items()} for layer in net.layers]
            total = g if total is None else [{k: a[k] + b[k] for k in a} for a, b in zip(total, g)]
        assert abs(float(loss) - total_loss) < 1e-12
        for a, b in zip(grads, total):
            for k in a:
                np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-12)


def test_two_d_input_is_univariate_sequences():
    X2 = RNG.normal(size=(40, 7))
    y = (X2.sum(axis=1) > 0).astype(int)
    clf = RNNClassifier(**SMALL).fit(X2, y)
    assert clf.n_features_in_ == 7  # scikit-learn's count: the table's columns
    ref = RNNClassifier(**SMALL).fit(X2[:, :, None], y)
    np.testing.assert_array_equal(clf.predict_proba(X2), ref.predict_proba(X2[:, :, None]))
    # a table keeps its columns; other lengths go as 3-D or as a list
    with pytest.raises(ValueError, match="X has 5 features, but RNNClassifier is expecting 7"):
        clf.predict(X2[:, :5])
    assert clf.predict(X2[:, :5, None]).shape == (40,)
    assert clf.predict([row[:3] for row in X2]).shape == (40,)
    # trailing NaN in a table: univariate sequences of unequal lengths
    Xn = X2.copy()
    Xn[:10, 4:] = np.nan
    np.testing.assert_allclose(
        clf.predict_proba(Xn)[:10], clf.predict_proba([r[:4] for r in X2[:10]]), atol=1e-12
    )


def test_predict_takes_other_lengths_than_fit():
    clf = RNNClassifier(**SMALL).fit(nan_padded(SEQS), LABELS)
    long = RNG.normal(size=(4, 25, 2))
    assert clf.predict_proba(long).shape == (4, 2)


def test_layout_warning_and_its_silencers():
    X = RNG.normal(size=(12, 2, 30))  # looks like (n, channels, steps)
    y = np.arange(12) % 2
    with pytest.warns(UserWarning, match=r"layout='nct'"):
        RNNClassifier(n_nodes=3, epochs=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RNNClassifier(n_nodes=3, epochs=1, layout="ntf").fit(X, y)
        clf = RNNClassifier(n_nodes=3, epochs=1, layout="NCT").fit(X, y)
        RNNClassifier(n_nodes=3, epochs=1).fit(RNG.normal(size=(12, 8, 8)), y)  # T == F
    assert clf.n_features_in_ == 2
    assert clf.predict(X).shape == (12,)


def test_aeon_style_list_of_channels_by_steps_needs_layout():
    seqs = [s.T for s in SEQS]  # (channels, T_i), as aeon gives unequal lengths
    with pytest.raises(ValueError, match=r"different numbers of features.*layout='nct'"):
        RNNClassifier(n_nodes=3, epochs=1).fit(seqs, LABELS)


def test_nan_padding_rules():
    clf = RNNClassifier(**SMALL).fit(SEQS, LABELS)
    X = nan_padded(SEQS)
    inside = X.copy()
    inside[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN inside a sequence.*sample 0, step 1"):
        clf.predict(inside)
    left = X.copy()
    left[1, 0, :] = np.nan  # NaN padding on the left is not padding
    with pytest.raises(ValueError, match="NaN inside a sequence"):
        clf.predict(left)
    empty = X.copy()
    empty[2] = np.nan
    with pytest.raises(ValueError, match="NaN only in sample 2"):
        clf.predict(empty)
    inf = X.copy()
    inf[3, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.predict(inf)


def test_depth_and_directions_build_what_they_say():
    clf = RNNClassifier(**SMALL, cell="GRU", num_layers=3, bidirectional=True, dropout=0.1)
    clf.fit(SEQS, LABELS)
    rec = clf.network_.recurrent
    assert isinstance(rec, anyrnn.Stacked) and len(rec) == 3 and rec.dropout == 0.1
    assert all(isinstance(layer, anyrnn.Bidirectional) for layer in rec)
    assert type(rec[0].forward_layer).__name__ == "GRU"
    assert clf.network_.head.n_in == 10
    with pytest.warns(UserWarning, match="no effect"):
        RNNClassifier(**SMALL, dropout=0.5).fit(SEQS, LABELS)


def test_class_weight_and_sample_weight():
    y = np.array(["a"] * 24 + ["b"] * 6)
    X = nan_padded(SEQS)
    plain = RNNClassifier(**SMALL).fit(X, y)
    ones = RNNClassifier(**SMALL).fit(X, y, sample_weight=np.ones(30))
    np.testing.assert_array_equal(plain.predict_proba(X), ones.predict_proba(X))
    # class_weight dict == the same weights given per sample
    cw = RNNClassifier(**SMALL, class_weight={"a": 1.0, "b": 4.0}).fit(X, y)
    sw = RNNClassifier(**SMALL).fit(X, y, sample_weight=np.where(y == "b", 4.0, 1.0))
    np.testing.assert_allclose(cw.predict_proba(X), sw.predict_proba(X), atol=1e-12)
    balanced = RNNClassifier(**SMALL, class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(balanced.predict_proba(X), cw.predict_proba(X), atol=1e-12)
    assert not np.allclose(plain.predict_proba(X), cw.predict_proba(X))
    # zero weight == leaving the sample out of the loss: its label does not matter
    w = np.ones(30)
    w[0] = 0.0
    flipped = y.copy()
    flipped[0] = "b"
    a = RNNRegressor(**SMALL).fit(X, LABELS * 1.0, sample_weight=w)
    b = RNNRegressor(**SMALL).fit(X, np.where(np.arange(30) == 0, 5.0, LABELS), sample_weight=w)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_partial_fit_continues_and_equals_fit_epoch_by_epoch():
    X = nan_padded(SEQS)
    full = RNNClassifier(**{**SMALL, "epochs": 3}).fit(X, LABELS)
    inc = RNNClassifier(**SMALL)
    for _ in range(3):
        inc.partial_fit(X, LABELS, classes=[0, 1])
    assert inc.n_iter_ == 3 and inc.loss_curve_ == full.loss_curve_
    np.testing.assert_array_equal(inc.predict_proba(X), full.predict_proba(X))
    reg = RNNRegressor(**SMALL)
    reg.partial_fit(SEQS, LABELS * 1.0).partial_fit(SEQS, LABELS * 1.0)
    assert reg.n_iter_ == 2
    kept = reg._optimizer
    reg.set_params(optimizer="sgd", lr=0.1).partial_fit(SEQS, LABELS * 1.0)  # new settings
    assert type(reg._optimizer).__name__ == "SGD" and reg._optimizer.lr == 0.1
    assert kept.iterations == 8  # the earlier optimizer was copied, never stepped in place


def test_warm_start_continues_from_the_fitted_weights():
    X = nan_padded(SEQS)
    six = RNNClassifier(**{**SMALL, "epochs": 6}).fit(X, LABELS)
    warm = RNNClassifier(**SMALL, warm_start=True).fit(X, LABELS)
    first = warm.predict_proba(X)
    warm.fit(X, LABELS)
    assert warm.n_iter_ == 6 and len(warm.loss_curve_) == 6
    assert not np.array_equal(warm.predict_proba(X), first)
    # not the same as six epochs in one fit (a new optimizer and shuffling stream), but close
    assert np.abs(warm.predict_proba(X) - six.predict_proba(X)).max() < 0.2
    cold = RNNClassifier(**SMALL).fit(X, LABELS)
    np.testing.assert_array_equal(cold.fit(X, LABELS).predict_proba(X), first)


@pytest.mark.parametrize("mode", ["loss", "score", True])
def test_early_stopping_watches_loss_or_score_and_keeps_the_best(mode):
    X = nan_padded(SEQS * 3)
    y = np.tile(LABELS, 3)
    clf = RNNClassifier(
        **{**SMALL, "epochs": 60}, early_stopping=mode, n_iter_no_change=3, lr=0.05
    ).fit(X, y)
    assert clf.n_iter_ < 60
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    if mode == "loss":
        best = int(np.argmin(clf.validation_loss_curve_))
        assert clf.best_validation_loss_ == min(clf.validation_loss_curve_)
    else:
        best = int(np.argmax(clf.validation_scores_))
        assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_validation_score_ == clf.validation_scores_[best]
    assert clf.n_iter_ - 1 - best >= 3  # stopped n_iter_no_change epochs after the best


def test_regressor_sequence_targets_of_unequal_lengths():
    targets = [np.cumsum(s[:, :1], axis=0) for s in SEQS]  # running sum, per step
    reg = RNNRegressor(**{**SMALL, "epochs": 5}).fit(SEQS, targets)
    pred = reg.predict(SEQS)
    assert pred.shape == (30, T_MAX, 1)
    for i, s in enumerate(SEQS):
        n = s.shape[0]
        assert np.all(np.isnan(pred[i, n:])) and np.all(np.isfinite(pred[i, :n]))
        np.testing.assert_allclose(pred[i, :n], reg.predict([s])[0], atol=1e-12)
    same = RNNRegressor(**{**SMALL, "epochs": 5}).fit(nan_padded(SEQS), nan_padded(targets))
    assert same.loss_curve_ == reg.loss_curve_
    assert reg.score(SEQS, targets) == pytest.approx(
        same.score(nan_padded(SEQS), nan_padded(targets))
    )
    with pytest.raises(ValueError, match="sample 0 of y has"):
        RNNRegressor(**SMALL).fit(SEQS, [t[:-1] if i == 0 else t for i, t in enumerate(targets)])


def test_regressor_early_stopping_on_sequence_targets_of_unequal_lengths():
    """The held-out part's longest sequence is shorter than the panel: its score is over
    its own steps (extra NaN padding changes nothing)."""
    targets = [np.cumsum(s[:, :1], axis=0) for s in SEQS]
    kw = dict(SMALL, early_stopping="loss", validation_fraction=0.2)
    reg = RNNRegressor(**kw).fit(SEQS, targets)
    padded = RNNRegressor(**kw).fit(nan_padded(SEQS, T_MAX + 2), nan_padded(targets, T_MAX + 2))
    assert len(reg.validation_scores_) == 3 and np.all(np.isfinite(reg.validation_scores_))
    assert padded.validation_scores_ == reg.validation_scores_
    assert padded.validation_loss_curve_ == reg.validation_loss_curve_


def test_scratch_classifier_takes_the_new_parameters_too():
    clf = ScratchSimpleRNNClassifier(
        n_nodes=4, n_features=2, n_output=1, cell="gru", num_layers=2, epochs=2, random_state=0
    ).fit(SEQS, LABELS)
    assert isinstance(clf.network_.recurrent, anyrnn.Stacked)
    assert clf.predict(SEQS).shape == (30,)


def test_estimators_take_arrays_of_their_own_backend():
    torch = pytest.importorskip("torch")
    X = torch.tensor(nan_padded(SEQS))
    kw = dict(SMALL, backend="torch")
    clf = RNNClassifier(**kw).fit(X, torch.tensor(LABELS))
    ref = RNNClassifier(**SMALL).fit(SEQS, LABELS)
    np.testing.assert_allclose(
        anyrnn.to_numpy(clf.predict_proba(X)), ref.predict_proba(SEQS), atol=1e-10
    )
    with pytest.raises(TypeError, match="to_backend"):
        ref.predict(X)  # a torch tensor for a NumPy estimator is moved explicitly
