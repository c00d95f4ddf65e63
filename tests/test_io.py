"""Saving and loading: round trips on every backend, atomic writes, and a fuzz loop over
corrupted and hostile files, every one rejected with ModelFileError and nothing run."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from conftest import rel_err

import anyrnn
from anyrnn import ModelFileError
from anyrnn import io as anyrnn_io
from anyrnn.io import saving

X = np.random.default_rng(0).normal(size=(6, 4, 3))
Y = (X[:, :, 0].sum(axis=1) > 0).astype(int)


def _fitted_classifier(**kw):
    return anyrnn.RNNClassifier(n_nodes=5, epochs=2, random_state=0, **kw).fit(X, Y)


def test_error_type_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


@pytest.mark.parametrize(
    "make",
    [
        lambda b: anyrnn.SimpleRNN(
            3, 5, activation="relu", return_sequences=True, random_state=1, **b
        ),
        lambda b: anyrnn.Dense(3, 2, random_state=1, **b),
    ],
    ids=["SimpleRNN", "Dense"],
)
def test_layer_round_trip_on_every_backend(tmp_path, backend, make):
    layer = make(dict(backend=backend.name, device=backend.device, dtype="float64"))
    path = tmp_path / "layer.npz"
    layer.save(path)
    again = anyrnn.load(path)
    assert type(again) is type(layer) and again.backend == layer.backend
    assert repr(again) == repr(layer)
    x = X if isinstance(layer, anyrnn.SimpleRNN) else X[:, 0, :]
    np.testing.assert_array_equal(
        anyrnn.to_numpy(again.forward(x)), anyrnn.to_numpy(layer.forward(x))
    )
    on_numpy = anyrnn.load(path, backend="numpy")  # trained elsewhere, loaded on NumPy
    assert on_numpy.backend == "numpy"
    assert rel_err(on_numpy.forward(x), layer.forward(x)) < 1e-12


def test_estimators_round_trip(tmp_path, backend):
    kw = dict(backend=backend.name, device=backend.device, dtype="float64")
    for est, target in [
        (anyrnn.RNNClassifier(n_nodes=5, epochs=2, random_state=0, **kw), np.array(["a", "b"])[Y]),
        (anyrnn.ScratchSimpleRNNClassifier(n_nodes=5, epochs=2, random_state=0, **kw), Y + 3),
        (anyrnn.RNNRegressor(n_nodes=5, epochs=2, random_state=0, **kw), X[:, :, :2]),
    ]:
        est.fit(X, target)
        path = tmp_path / f"{type(est).__name__}.npz"
        est.save(path)
        again = anyrnn.load(path)
        assert type(again) is type(est)
        assert again.get_params() == {**est.get_params(), "device": None}
        assert again.loss_curve_ == est.loss_curve_ and again.n_iter_ == est.n_iter_
        if hasattr(est, "classes_"):
            np.testing.assert_array_equal(again.classes_, est.classes_)
            np.testing.assert_array_equal(again.predict(X), est.predict(X))
            out, ref = again.predict_proba(X), est.predict_proba(X)
        else:
            out, ref = again.predict(X), est.predict(X)
        np.testing.assert_array_equal(anyrnn.to_numpy(out), anyrnn.to_numpy(ref))
        on_numpy = anyrnn.load(path, backend="numpy")
        assert on_numpy.network_.recurrent.backend == "numpy"
        predict = "predict_proba" if hasattr(est, "classes_") else "predict"
        assert rel_err(getattr(on_numpy, predict)(X), getattr(est, predict)(X)) < 1e-12


def test_saving_an_unfitted_estimator_refuses(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        anyrnn.RNNClassifier().save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    layer = anyrnn.SimpleRNN(3, 4, random_state=0)
    layer.save(path)
    original = path.read_bytes()
    other = anyrnn.SimpleRNN(3, 4, random_state=1)

    def crash(*args, **kwargs):
        raise OSError("disk pulled out mid-save")

    monkeypatch.setattr(saving.os, "replace", crash)  # what _write_atomic calls
    with pytest.raises(OSError, match="mid-save"):
        other.save(path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp file left


def test_save_keeps_the_name_given(tmp_path):
    anyrnn.Dense(2, 2).save(tmp_path / "weights.bin")
    assert (tmp_path / "weights.bin").exists()
    assert isinstance(anyrnn.load(tmp_path / "weights.bin"), anyrnn.Dense)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        anyrnn.load(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- fuzz


def _good_file(tmp_path) -> bytes:
    path = tmp_path / "good.npz"
    _fitted_classifier().save(path)
    return path.read_bytes()


def _write_npz(members: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **members)
    return buf.getvalue()


def _parts(raw: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        header = json.loads(z[anyrnn_io.HEADER].tobytes())
        arrays = {k: z[k] for k in z.files if k != anyrnn_io.HEADER}
    return header, arrays


def _craft(
    header: dict, arrays: dict[str, np.ndarray], *, rehash: bool = True, extra=None
) -> bytes:
    header = dict(header)
    if rehash:  # what a careful forger does: recompute both checksums
        header = anyrnn_io._seal(header, arrays)
    members = {
        anyrnn_io.HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        **arrays,
    }
    members.update(extra or {})
    return _write_npz(members)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/anyrnn-pwned",))


def _hostile_variants(good: bytes) -> list[tuple[str, bytes]]:
    header, arrays = _parts(good)
    variants = [
        ("empty file", b""),
        ("random bytes", np.random.default_rng(0).bytes(4096)),
        ("a pickle of the model", pickle.dumps(_fitted_classifier())),
        ("a pickle that runs code", pickle.dumps(_Evil())),
        ("a plain .npy", _npy_bytes(np.ones(3))),
        ("npz without header", _write_npz(arrays)),
        ("object array member", _object_npz(header, arrays)),
        ("pickle inside the zip", _pickle_member(good)),
        (
            "header not JSON",
            _write_npz({anyrnn_io.HEADER: np.frombuffer(b"{nope", np.uint8), **arrays}),
        ),
        (
            "header JSON list",
            _write_npz({anyrnn_io.HEADER: np.frombuffer(b"[1, 2]", np.uint8), **arrays}),
        ),
        (
            "header not utf-8",
            _write_npz({anyrnn_io.HEADER: np.frombuffer(b"\xff\xfe", np.uint8), **arrays}),
        ),
        ("header as float array", _write_npz({anyrnn_io.HEADER: np.ones(3), **arrays})),
        ("wrong format name", _craft({**header, "format": "keras"}, arrays)),
        ("newer format version", _craft({**header, "format_version": 99}, arrays)),
        ("format version a string", _craft({**header, "format_version": "1"}, arrays)),
        ("unknown class", _craft({**header, "class": "os.system"}, arrays)),
        ("class of another kind", _craft({**header, "class": "Dense"}, arrays)),
        ("config extra key", _craft({**header, "config": {**header["config"], "evil": 1}}, arrays)),
        (
            "config negative n_nodes",
            _craft({**header, "config": {**header["config"], "n_nodes": -5}}, arrays),
        ),
        (
            "config unknown optimizer",
            _craft({**header, "config": {**header["config"], "optimizer": "x"}}, arrays),
        ),
        (
            "config cell unknown",
            _craft({**header, "config": {**header["config"], "cell": "lstmx"}}, arrays),
        ),
        ("config not a dict", _craft({**header, "config": [1]}, arrays)),
        (
            "state unknown key",
            _craft({**header, "state": {**header["state"], "__class__": 1}}, arrays),
        ),
        ("state n_out zero", _craft({**header, "state": {**header["state"], "_n_out": 0}}, arrays)),
        (
            "state n_features string",
            _craft({**header, "state": {**header["state"], "n_features_in_": "3"}}, arrays),
        ),
        (
            "saved backend a module",
            _craft({**header, "saved_backend": {"name": "os", "device": "cpu"}}, arrays),
        ),
        (
            "saved backend missing",
            _craft({k: v for k, v in header.items() if k != "saved_backend"}, arrays),
        ),
        ("dtype unknown", _craft({**header, "dtype": "float16"}, arrays)),
        ("checksum wrong", _craft({**header, "sha256": "0" * 64}, arrays, rehash=False)),
        (
            "checksum missing",
            _craft({k: v for k, v in header.items() if k != "sha256"}, arrays, rehash=False),
        ),
        ("weights altered, old checksum", _craft(header, _altered(arrays), rehash=False)),
        (
            "weights transposed",
            _craft(header, {**arrays, "recurrent/W_h": arrays["recurrent/W_h"].T[:, :4]}),
        ),
        (
            "weights wrong shape",
            _craft(header, {**arrays, "recurrent/W_x": np.ones((4, 5), np.float32)}),
        ),
        (
            "weights wrong dtype",
            _craft(header, {**arrays, "recurrent/W_x": arrays["recurrent/W_x"].astype(np.float64)}),
        ),
        ("weights int", _craft(header, {**arrays, "head/B": np.zeros(1, np.int32)})),
        ("weights NaN", _craft(header, {**arrays, "head/B": np.full(1, np.nan, np.float32)})),
        ("weights inf", _craft(header, {**arrays, "head/W": np.full((5, 1), np.inf, np.float32)})),
        ("array missing", _craft(header, {k: v for k, v in arrays.items() if k != "head/W"})),
        ("array extra", _craft(header, {**arrays, "recurrent/W_q": np.ones(2, np.float32)})),
        ("classes missing", _craft(header, {k: v for k, v in arrays.items() if k != "classes_"})),
        ("classes too many", _craft(header, {**arrays, "classes_": np.arange(5)})),
        ("classes 2-D", _craft(header, {**arrays, "classes_": np.arange(4).reshape(2, 2)})),
        ("classes float", _craft(header, {**arrays, "classes_": np.array([0.5, 1.5])})),
        ("declared shape lies (zip bomb)", _declared_shape_lie(header, arrays)),
        ("member not declared", _craft(header, arrays, extra={"zzz": np.ones(2)})),
        (
            "arrays entry malformed",
            _craft(
                {**header, "arrays": {**header["arrays"], "head/B": "float"}}, arrays, rehash=False
            ),
        ),
        ("huge header", _write_npz({anyrnn_io.HEADER: np.zeros(2 << 20, np.uint8), **arrays})),
        ("path traversal member", _traversal(good)),
    ]
    n = len(good)
    for cut in np.linspace(1, n - 1, 24).astype(int):
        variants.append((f"truncated at {cut}/{n}", good[:cut]))
    rng = np.random.default_rng(1)
    for pos in rng.integers(0, n, 60):
        flipped = bytearray(good)
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        variants.append((f"bit flip at {pos}", bytes(flipped)))
    return variants


def _npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _object_npz(header, arrays) -> bytes:
    buf = io.BytesIO()
    members = {anyrnn_io.HEADER: np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays}
    members["head/B"] = np.array([_Evil()], dtype=object)
    np.savez(buf, **members)  # savez pickles object arrays
    return buf.getvalue()


def _pickle_member(good: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(good))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "head/B.npy":
                data = pickle.dumps(_Evil())
            dst.writestr(name, data)
    return buf.getvalue()


def _traversal(good: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(good))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("../../etc/evil.npy", _npy_bytes(np.ones(2)))
    return buf.getvalue()


def _altered(arrays):
    out = dict(arrays)
    w = out["recurrent/W_h"].copy()
    w[0, 0] += 0.25
    out["recurrent/W_h"] = w
    return out


def _declared_shape_lie(header, arrays) -> bytes:
    big = dict(arrays)
    big["head/W"] = np.zeros((5, 200_000), np.float32)  # compresses to nothing in a zip bomb
    h = anyrnn_io._seal(header, arrays)  # declares the small shape, the big data's checksum
    h["arrays_sha256"] = anyrnn_io._checksum(big)
    h["sha256"] = anyrnn_io._header_checksum(h)
    members = {anyrnn_io.HEADER: np.frombuffer(json.dumps(h).encode(), np.uint8), **big}
    buf = io.BytesIO()
    np.savez_compressed(buf, **members)
    return buf.getvalue()


def test_fuzz_corrupted_and_hostile_files(tmp_path):
    good = _good_file(tmp_path)
    reference = anyrnn.load(tmp_path / "good.npz")
    ref_proba = reference.predict_proba(X)
    sentinel = "/tmp/anyrnn-pwned"
    if os.path.exists(sentinel):
        os.remove(sentinel)
    variants = _hostile_variants(good)
    assert len(variants) >= 50
    rejected, identical = 0, 0
    for name, raw in variants:
        path = tmp_path / "bad.npz"
        path.write_bytes(raw)
        try:
            model = anyrnn.load(path)
        except ModelFileError as exc:
            assert str(exc), name
            rejected += 1
            continue
        except Exception as exc:  # any other type is a defect
            pytest.fail(f"{name}: {type(exc).__name__}: {exc}")
        # Only a flip in bytes no check covers (e.g. a zip timestamp) may load, and then
        # the model must be exactly the original one.
        assert name.startswith("bit flip"), f"{name} was loaded"
        np.testing.assert_array_equal(model.predict_proba(X), ref_proba)
        identical += 1
    assert not os.path.exists(sentinel), "a hostile file ran code"
    assert rejected >= 50
    assert rejected + identical == len(variants)


# ----------------------------------------------------------------------------- containers


def _stack(**b):
    return anyrnn.Stacked(
        [
            anyrnn.Bidirectional(
                anyrnn.LSTM(3, 4, return_sequences=True, random_state=1, **b), "sum", random_state=2
            ),
            anyrnn.GRU(4, 2, reset_after=False, random_state=3, **b),
        ],
        dropout=0.25,
    )


def test_stacked_and_bidirectional_round_trip(tmp_path, backend):
    obj = _stack(backend=backend.name, device=backend.device, dtype="float64")
    obj.save(tmp_path / "s.npz")
    again = anyrnn.load(tmp_path / "s.npz")
    assert repr(again) == repr(obj)
    np.testing.assert_array_equal(anyrnn.to_numpy(again.infer(X)), anyrnn.to_numpy(obj.infer(X)))
    bi = obj[0]
    bi.save(tmp_path / "b.npz")
    assert anyrnn.to_numpy(anyrnn.load(tmp_path / "b.npz", backend="numpy").infer(X)).shape == (
        6,
        4,
        4,
    )


def _container_file(tmp_path, mutate) -> bytes:
    path = tmp_path / "s.npz"
    _stack(dtype="float64").save(path)
    header, arrays = _parts(path.read_bytes())
    header, arrays = mutate(header, arrays)
    return _craft(header, arrays)


def _nest(depth):
    """Bidirectional inside Bidirectional, ``depth`` deep (one chain: grows linearly)."""
    leaf = {"class": "GRU", "config": {"n_features": 3, "n_nodes": 2}}
    inner = leaf
    for _ in range(depth):
        inner = {
            "class": "Bidirectional",
            "config": {"merge_mode": "sum", "forward": inner, "backward": leaf},
        }
    return inner


@pytest.mark.parametrize(
    "name, mutate, words",
    [
        (
            "nesting bomb",
            lambda h, a: ({**h, "config": {"dropout": 0.0, "layers": [_nest(40)]}}, a),
            ["cannot be nested"],
        ),
        (
            "too many layers",
            lambda h, a: (
                {
                    **h,
                    "config": {
                        "dropout": 0.0,
                        "layers": [
                            {
                                "class": "GRU",
                                "config": {"n_features": 3, "n_nodes": 3, "return_sequences": True},
                            }
                        ]
                        * 100,
                    },
                },
                a,
            ),
            ["more than 64"],
        ),
        (
            "nested Stacked",
            lambda h, a: (
                {
                    **h,
                    "config": {
                        "dropout": 0.0,
                        "layers": [{"class": "Stacked", "config": h["config"]}],
                    },
                },
                a,
            ),
            ["cannot be nested"],
        ),
        (
            "nested unknown class",
            lambda h, a: (
                {**h, "config": {"dropout": 0.0, "layers": [{"class": "os.system", "config": {}}]}},
                a,
            ),
            ["cannot be nested"],
        ),
        (
            "nested entry not an object",
            lambda h, a: ({**h, "config": {"dropout": 0.0, "layers": [7]}}, a),
            ["nested layer"],
        ),
        (
            "extra config key",
            lambda h, a: ({**h, "config": {**h["config"], "evil": 1}}, a),
            ["exactly"],
        ),
        (
            "layers not chaining",
            lambda h, a: (
                {**h, "config": {**h["config"], "layers": h["config"]["layers"][::-1]}},
                a,
            ),
            ["are not those"],
        ),
        (
            "arrays of another architecture",
            lambda h, a: (h, {k.replace("0/forward/", "0/fwd/"): v for k, v in a.items()}),
            ["are not those"],
        ),
    ],
)
def test_hostile_container_files(tmp_path, name, mutate, words):
    path = tmp_path / "bad.npz"
    path.write_bytes(_container_file(tmp_path, mutate))
    with pytest.raises(ModelFileError) as info:
        anyrnn.load(path)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
