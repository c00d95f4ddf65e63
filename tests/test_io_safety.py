"""Model files, hardened (issue 11, items 3-5).

* ``save`` validates exactly what ``load`` validates before writing, so it never replaces
  a good file with one ``load`` refuses; it keeps an existing file's mode (or the umask's
  default) and writes through symlinks.
* The header is covered by a checksum (format version 2; version 1 still loads, with a
  warning); declared shapes are checked before anything is read or built; members are
  read in bounded chunks, stored uncompressed (no zip bombs).
* ``load`` raises the caller's and the machine's errors as constructing a layer would,
  never ``ModelFileError``.

Every failing public call leaves its object unchanged (``fingerprint``).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from _state import fingerprint

import anyrnn
from anyrnn import ModelFileError
from anyrnn import io as anyrnn_io
from anyrnn.backend import _status

X = np.random.default_rng(0).normal(size=(6, 4, 3))
Y = (X[:, :, 0].sum(axis=1) > 0).astype(int)


def _parts(raw: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        header = json.loads(z[anyrnn_io.HEADER].tobytes())
        arrays = {k: z[k] for k in z.files if k != anyrnn_io.HEADER}
    return header, arrays


def _write(header: dict, arrays: dict, compress: bool = False) -> bytes:
    buf = io.BytesIO()
    members = {anyrnn_io.HEADER: np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays}
    (np.savez_compressed if compress else np.savez)(buf, **members)
    return buf.getvalue()


def _layer_file(tmp_path, layer=None) -> tuple[bytes, dict, dict]:
    path = tmp_path / "layer.npz"
    (layer or anyrnn.SimpleRNN(3, 4, random_state=0)).save(path)
    raw = path.read_bytes()
    return (raw, *_parts(raw))


# ----------------------------------------------------------------------------- item 3: save


def _nan_layer():
    rnn = anyrnn.SimpleRNN(3, 4, random_state=1)
    rnn.W_h = np.full((4, 4), np.nan)
    return rnn


def _inf_dense():
    d = anyrnn.Dense(3, 2, random_state=1)
    d.B = [np.inf, 0.0]
    return d


def _nan_stack():
    inner = anyrnn.GRU(4, 2, random_state=3)
    inner.B_h = np.full(6, np.nan)
    return anyrnn.Stacked([anyrnn.LSTM(3, 4, return_sequences=True, random_state=2), inner])


def _nan_estimator():
    clf = anyrnn.RNNClassifier(n_nodes=3, epochs=1, random_state=0).fit(X, Y)
    clf.network_.head.W = np.full((3, 1), np.nan)
    return clf


def _resized_estimator():
    return anyrnn.RNNClassifier(n_nodes=3, epochs=1, random_state=0).fit(X, Y).set_params(n_nodes=7)


def _recelled_estimator():
    return (
        anyrnn.RNNRegressor(n_nodes=3, epochs=1, random_state=0).fit(X, Y).set_params(cell="lstm")
    )


def _bad_lr_estimator():
    return anyrnn.RNNRegressor(n_nodes=3, epochs=1, random_state=0).fit(X, Y).set_params(lr=-1)


SAVE_REFUSALS = [
    ("layer with NaN weights", _nan_layer, ["W_h", "NaN"]),
    ("Dense with an infinite bias", _inf_dense, ["'B'", "infinity"]),
    ("Stacked with a NaN inside", _nan_stack, ["1/B_h", "NaN"]),
    ("estimator with NaN weights", _nan_estimator, ["head/W", "NaN"]),
    ("n_nodes changed after fit", _resized_estimator, ["set_params", "n_nodes: 3 when fitted, 7"]),
    ("cell changed after fit", _recelled_estimator, ["set_params", "'simple' when fitted, 'lstm'"]),
    ("lr=-1 set after fit", _bad_lr_estimator, ["configuration is invalid", "lr=-1"]),
]


@pytest.mark.parametrize("case", SAVE_REFUSALS, ids=[c[0] for c in SAVE_REFUSALS])
def test_save_refuses_what_load_would_refuse_and_keeps_the_old_file(tmp_path, case):
    _, make, words = case
    path = tmp_path / "model.npz"
    anyrnn.Dense(2, 2, random_state=0).save(path)  # a good file already there
    good = path.read_bytes()
    obj = make()
    before = fingerprint(obj)
    with pytest.raises(ValueError) as info:
        obj.save(path)
    assert not isinstance(info.value, ModelFileError)  # the object's fault, not a file's
    for w in words + ["cannot be saved", "Nothing was written"]:
        assert w in str(info.value), (w, str(info.value))
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp file left
    assert fingerprint(obj) == before
    assert isinstance(anyrnn.load(path), anyrnn.Dense)


def test_save_and_load_accept_the_same_objects(tmp_path):
    """Whatever save writes, load reads back to the same arrays (every saveable class)."""
    objs = [
        anyrnn.SimpleRNN(3, 4, activation="relu", go_backwards=True, random_state=0),
        anyrnn.LSTM(3, 4, return_sequences=True, return_state=True, random_state=0),
        anyrnn.GRU(3, 4, reset_after=False, random_state=0),
        anyrnn.Dense(3, 2, random_state=0),
        anyrnn.Bidirectional(anyrnn.GRU(3, 2, return_sequences=True), "mul", random_state=1),
        anyrnn.RNNRegressor(n_nodes=3, epochs=1, random_state=0).fit(X, X[:, :, :2]),
    ]
    for k, obj in enumerate(objs):
        path = tmp_path / f"{k}.npz"
        obj.save(path)
        again = anyrnn.load(path)
        assert type(again) is type(obj)
        mine, theirs = obj._saved_arrays(), again._saved_arrays()
        assert sorted(mine) == sorted(theirs)
        for name in mine:
            np.testing.assert_array_equal(theirs[name], mine[name])


def test_save_keeps_the_mode_of_an_existing_file(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    anyrnn.Dense(2, 2).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    os.chmod(path, 0o604)
    anyrnn.Dense(2, 2).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o604


def test_a_new_file_gets_the_umask_default(tmp_path):
    old = os.umask(0o027)
    try:
        anyrnn.Dense(2, 2).save(tmp_path / "new.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o640  # 0o666 & ~0o027


def test_save_writes_through_a_symlink(tmp_path):
    real_dir = tmp_path / "models"
    real_dir.mkdir()
    target = real_dir / "real.npz"
    anyrnn.Dense(2, 2, random_state=0).save(target)
    os.chmod(target, 0o644)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    layer = anyrnn.Dense(2, 2, random_state=5)
    layer.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    np.testing.assert_array_equal(anyrnn.load(target).W, layer.W)
    assert sorted(p.name for p in real_dir.iterdir()) == ["real.npz"]
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(real_dir / "made.npz")  # a link to a file not yet there
    layer.save(dangling)
    assert dangling.is_symlink() and (real_dir / "made.npz").is_file()


def test_save_onto_a_directory_or_a_missing_folder(tmp_path):
    layer = anyrnn.Dense(2, 2)
    before = fingerprint(layer)
    with pytest.raises(IsADirectoryError):
        layer.save(tmp_path)
    with pytest.raises(FileNotFoundError):
        layer.save(tmp_path / "no" / "such" / "dir.npz")
    assert list(tmp_path.iterdir()) == []
    assert fingerprint(layer) == before


# ----------------------------------------------------------------------------- item 4: header


@pytest.mark.parametrize(
    "edit",
    [
        {"config": {"activation": "relu"}},
        {"config": {"go_backwards": True}},
        {"config": {"return_sequences": True}},
        {"state": {"note": 1}},
        {"dtype": "float64"},
        {"saved_backend": {"name": "array_api_strict", "device": "CPU_DEVICE"}},
        {"arrays_sha256": "0" * 64},
    ],
    ids=lambda e: (
        next(iter(e)) + "." + next(iter(next(iter(e.values()))))
        if isinstance(next(iter(e.values())), dict)
        else next(iter(e))
    ),
)
def test_an_edited_header_is_refused(tmp_path, edit):
    _, header, arrays = _layer_file(tmp_path)
    for key, value in edit.items():
        header[key] = {**header[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "edited.npz"
    path.write_bytes(_write(header, arrays))
    with pytest.raises(ModelFileError, match="header does not match its checksum"):
        anyrnn.load(path)


def test_header_whitespace_and_key_order_do_not_matter(tmp_path):
    """The checksum covers the header's content (canonical JSON), not its formatting."""
    raw, header, arrays = _layer_file(tmp_path)
    text = json.dumps(dict(reversed(list(header.items()))), indent=3)
    buf = io.BytesIO()
    np.savez(buf, **{anyrnn_io.HEADER: np.frombuffer(text.encode(), np.uint8)}, **arrays)
    path = tmp_path / "pretty.npz"
    path.write_bytes(buf.getvalue())
    np.testing.assert_array_equal(anyrnn.load(path).W_h, anyrnn.load(tmp_path / "layer.npz").W_h)


def _as_version_1(header: dict, arrays: dict) -> dict:
    old = {k: v for k, v in header.items() if k not in ("arrays_sha256", "sha256")}
    old["format_version"] = 1
    old["sha256"] = anyrnn_io._checksum(arrays)  # version 1: the arrays only
    return old


def test_version_1_files_still_load_with_a_warning(tmp_path):
    layer = anyrnn.LSTM(3, 4, random_state=0)
    _, header, arrays = _layer_file(tmp_path, layer)
    path = tmp_path / "v1.npz"
    path.write_bytes(_write(_as_version_1(header, arrays), arrays))
    with pytest.warns(UserWarning, match="format version 1"):
        again = anyrnn.load(path)
    np.testing.assert_array_equal(again.infer(X), layer.infer(X))
    again.save(path)  # saving again writes version 2
    assert _parts(path.read_bytes())[0]["format_version"] == anyrnn_io.FORMAT_VERSION == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        anyrnn.load(path)


def test_version_1_arrays_are_still_checked(tmp_path):
    _, header, arrays = _layer_file(tmp_path)
    old = _as_version_1(header, arrays)
    arrays = {**arrays, "W_h": arrays["W_h"] + 1}  # altered after the checksum
    path = tmp_path / "v1.npz"
    path.write_bytes(_write(old, arrays))
    with pytest.warns(UserWarning), pytest.raises(ModelFileError, match="checksum"):
        anyrnn.load(path)


def test_relabelling_a_version_2_file_as_version_1_is_refused(tmp_path):
    _, header, arrays = _layer_file(tmp_path)
    header["format_version"] = 1  # its sha256 is a header checksum, not v1's array checksum
    path = tmp_path / "relabelled.npz"
    path.write_bytes(_write(header, arrays))
    with pytest.warns(UserWarning), pytest.raises(ModelFileError, match="checksum"):
        anyrnn.load(path)


def test_declared_shapes_are_checked_before_anything_is_built(tmp_path, monkeypatch):
    """A tiny file declaring n_nodes=3000 costs nothing: refused before any build."""
    _, header, arrays = _layer_file(tmp_path)
    built = []
    monkeypatch.setattr(
        anyrnn.SimpleRNN, "_from_saved", classmethod(lambda *a: built.append(a) or 1 / 0)
    )
    monkeypatch.setattr(anyrnn.SimpleRNN, "__init__", lambda *a, **k: built.append(a) or 1 / 0)
    variants = {
        # the architecture grows, the arrays stay small
        "config only": anyrnn_io._seal(
            {**header, "config": {**header["config"], "n_nodes": 3000}}, arrays
        ),
    }
    # the arrays are declared at the grown size, but the file holds the small ones
    grown = anyrnn_io._seal({**header, "config": {**header["config"], "n_nodes": 3000}}, arrays)
    grown["arrays"] = {
        "W_x": ["<f4", [3, 3000]],
        "W_h": ["<f4", [3000, 3000]],
        "B": ["<f4", [3000]],
    }
    grown["sha256"] = anyrnn_io._header_checksum(grown)
    variants["arrays declared huge"] = grown
    for name, h in variants.items():
        path = tmp_path / "big.npz"
        path.write_bytes(_write(h, arrays))
        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError) as info:
                anyrnn.load(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "3000" in str(info.value), (name, str(info.value))
        assert peak < 4 << 20, (name, peak)  # nothing of the declared 36 MB was made
    assert built == []


def _bomb(header: dict, arrays: dict, name: str, inflated: int) -> bytes:
    """The file with member ``name`` replaced by a deflated one that inflates hugely."""
    src = zipfile.ZipFile(io.BytesIO(_write(header, arrays)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            if info.filename == name:
                dst.writestr(name, b"\0" * inflated, compress_type=zipfile.ZIP_DEFLATED)
            else:
                dst.writestr(info, src.read(info))
    return buf.getvalue()


def _lie_about_size(raw: bytes, name: str, size: int) -> bytes:
    """Rewrite the central directory so that ``name`` declares ``size`` uncompressed bytes."""
    data = bytearray(raw)
    zf = zipfile.ZipFile(io.BytesIO(raw))
    info = zf.getinfo(name)
    # local header: uncompressed size at offset 22
    data[info.header_offset + 22 : info.header_offset + 26] = size.to_bytes(4, "little")
    pos = 0
    while True:
        pos = raw.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        n = int.from_bytes(raw[pos + 28 : pos + 30], "little")
        if raw[pos + 46 : pos + 46 + n].decode() == name:
            data[pos + 24 : pos + 28] = size.to_bytes(4, "little")  # uncompressed size
        pos += 4
    return bytes(data)


def test_zip_bombs_are_refused_without_inflating(tmp_path):
    raw, header, arrays = _layer_file(tmp_path)
    bomb = _bomb(header, arrays, "W_h.npy", 64 << 20)  # 64 MB of zeros in ~64 KB
    assert len(bomb) < 200_000
    variants = {
        "deflated member": bomb,
        "deflated member declaring the right size": _lie_about_size(
            bomb, "W_h.npy", zipfile.ZipFile(io.BytesIO(raw)).getinfo("W_h.npy").file_size
        ),
        "compressed archive (savez_compressed)": _write(header, arrays, compress=True),
    }
    for name, data in variants.items():
        path = tmp_path / "bomb.npz"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError) as info:
                anyrnn.load(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "compressed" in str(info.value) or "bytes" in str(info.value), (name, info.value)
        assert peak < 4 << 20, (name, peak)


def test_a_stored_member_that_lies_about_its_size_is_caught(tmp_path):
    raw, _, _ = _layer_file(tmp_path)
    size = zipfile.ZipFile(io.BytesIO(raw)).getinfo("W_h.npy").file_size
    path = tmp_path / "lie.npz"
    for lie in (size - 8, size + 8, 10**9):
        path.write_bytes(_lie_about_size(raw, "W_h.npy", lie))
        with pytest.raises(ModelFileError):
            anyrnn.load(path)


def test_a_npy_header_declaring_a_huge_array_allocates_nothing(tmp_path):
    raw, header, arrays = _layer_file(tmp_path)
    src = zipfile.ZipFile(io.BytesIO(raw))
    buf = io.BytesIO()
    evil = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        evil, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    evil.write(np.zeros(16, np.float32).tobytes())  # W_h's 64 bytes of data
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = evil.getvalue() if info.filename == "W_h.npy" else src.read(info)
            dst.writestr(info.filename, data)
    path = tmp_path / "huge-npy.npz"
    path.write_bytes(buf.getvalue())
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="shape"):
            anyrnn.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_two_members_with_one_name_are_refused(tmp_path):
    raw, _, _ = _layer_file(tmp_path)
    src = zipfile.ZipFile(io.BytesIO(raw))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(buf, "w") as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info))
            dst.writestr("W_h.npy", src.read("W_x.npy"))
    path = tmp_path / "dup.npz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="two members"):
        anyrnn.load(path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_file_is_not_read_forever():
    with pytest.raises(ModelFileError, match="not a file"):
        anyrnn.load("/dev/zero")


# ----------------------------------------------------------------------------- item 5: whose fault


def _saved(tmp_path, **header_changes) -> str:
    path = tmp_path / "m.npz"
    _, header, arrays = _layer_file(tmp_path, anyrnn.GRU(3, 4, random_state=0))
    path.write_bytes(_write(anyrnn_io._seal({**header, **header_changes}, arrays), arrays))
    return path


def _float64_file(tmp_path) -> str:
    path = tmp_path / "f64.npz"
    anyrnn.SimpleRNN(3, 4, dtype="float64", random_state=0).save(path)
    return path


LOAD_CALLER_ERRORS = [
    ("unknown backend", lambda p: anyrnn.load(p, backend="nonsense"), ValueError, ["nonsense"]),
    ("backend of a wrong type", lambda p: anyrnn.load(p, backend=3), TypeError, ["backend"]),
    ("numpy has no cuda", lambda p: anyrnn.load(p, device="cuda"), ValueError, ["cpu", "cuda"]),
    (
        "strict device unknown",
        lambda p: anyrnn.load(p, backend="array_api_strict", device="device9"),
        ValueError,
        ["device9"],
    ),
]


@pytest.mark.parametrize("case", LOAD_CALLER_ERRORS, ids=[c[0] for c in LOAD_CALLER_ERRORS])
def test_load_raises_the_callers_errors_as_construction_does(tmp_path, case):
    _, call, exc, words = case
    path = _saved(tmp_path)
    with pytest.raises(exc) as info:
        call(path)
    assert not isinstance(info.value, ModelFileError)
    for w in words:
        assert w in str(info.value)


def test_load_on_a_torch_device_that_is_not_here(tmp_path):
    torch = pytest.importorskip("torch", reason="torch not installed")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    path = _saved(tmp_path)
    with pytest.raises(anyrnn.BackendUnavailableError, match="cuda") as construct:
        anyrnn.GRU(3, 4, backend="torch", device="cuda")
    with pytest.raises(anyrnn.BackendUnavailableError, match="cuda") as loading:
        anyrnn.load(path, backend="torch", device="cuda")
    assert str(loading.value) == str(construct.value)


def test_load_float64_on_jax_without_x64(tmp_path):
    jax = pytest.importorskip("jax", reason="jax not installed")
    path = _float64_file(tmp_path)
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="jax_enable_x64") as info:
            anyrnn.load(path, backend="jax")
        assert not isinstance(info.value, ModelFileError)
        assert anyrnn.load(path, backend="numpy").dtype == np.float64
    finally:
        jax.config.update("jax_enable_x64", True)


@pytest.mark.skipif(_status("cupy")[0], reason="a GPU is usable here")
def test_a_cupy_saved_model_on_a_machine_without_gpu(tmp_path):
    path = _saved(tmp_path, saved_backend={"name": "cupy", "device": "<CUDA Device 0>"})
    with pytest.raises(anyrnn.BackendUnavailableError, match="cupy") as info:
        anyrnn.load(path)
    assert not isinstance(info.value, ModelFileError)
    assert anyrnn.load(path, backend="numpy").backend == "numpy"  # the remedy the docs give


def test_a_corrupt_file_is_the_files_fault_even_with_a_bad_backend(tmp_path):
    """The file is checked before the backend is resolved: damage is reported as such."""
    path = _saved(tmp_path, saved_backend={"name": "cupy", "device": "0"})
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(ModelFileError):
        anyrnn.load(path)
