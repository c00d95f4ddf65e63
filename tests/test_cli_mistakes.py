"""The command line and user mistakes (issue 11, item 11): a one-line error and exit status 2,
never a traceback, and every argument checked before any training starts."""

from __future__ import annotations

import os

import pytest

from anyrnn import cli
from anyrnn.cli import main


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the demo's training (or the bench's timing) starts."""

    def boom(*args, **kwargs):
        raise AssertionError("the work started before the arguments were checked")

    monkeypatch.setattr(cli, "_demo", boom)
    monkeypatch.setattr(cli, "_bench", boom)


def _refused(argv, capsys, *words):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["demo", "--backend", "nonsense"], ["--backend nonsense", "unknown backend"]),
        (["demo", "--backend", ""], ["unknown backend"]),
        (["demo", "--backend", "os.path"], ["not an Array API"]),
        (["demo", "--seed", "-1"], ["--seed", "-1"]),
        (["demo", "--seed", str(2**32)], ["--seed", str(2**32)]),
        (["demo", "--epochs", "-3"], ["--epochs", "-3"]),
        (["demo", "--epochs", "x"], ["invalid int value"]),
        (["demo", "--dtype", "float16"], ["invalid choice"]),
        (["bench", "--backend", "nope"], ["--backend nope"]),
        (["bench", "--repeats", "0"], ["--repeats"]),
        (["bench", "--cell", "rnn"], ["invalid choice"]),
    ],
)
def test_argument_mistakes_are_one_line_errors(argv, words, capsys, no_training):
    _refused(argv, capsys, *words)


def test_unusable_backend_is_refused_before_training(capsys, no_training):
    from anyrnn.backend import _status

    if _status("cupy")[0]:
        pytest.skip("a GPU is usable here")
    _refused(["demo", "--backend", "cupy"], capsys, "cupy", "pip install")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "no" / "such" / "dir" / "c.png", ["does not exist"]),
        (lambda d: d, ["is a directory"]),
        (lambda d: d / "c.txt", ["cannot write .txt", ".png"]),
        (lambda d: d / "file.png" / "c.png", ["is not a directory"]),
    ],
    ids=["missing directory", "a directory", "unknown format", "parent is a file"],
)
def test_unwritable_plot_is_refused_before_training(tmp_path, make, words, capsys, no_training):
    pytest.importorskip("matplotlib", reason="needs matplotlib")
    (tmp_path / "file.png").write_bytes(b"x")
    _refused(["demo", "--plot", str(make(tmp_path))], capsys, "--plot", *words)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_directory_is_refused_before_training(tmp_path, capsys, no_training):
    pytest.importorskip("matplotlib", reason="needs matplotlib")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _refused(["demo", "--plot", str(ro / "c.png")], capsys, "cannot write")
    finally:
        ro.chmod(0o700)


def test_plot_goes_exactly_where_it_says(tmp_path, capsys, monkeypatch):
    """No suffix: a PNG written to exactly that path (matplotlib alone would add .png),
    and the printed path is the absolute path of the file written."""
    pytest.importorskip("matplotlib", reason="needs matplotlib")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--epochs", "1", "--plot", "curves", "--quiet"]) == 0
    out = capsys.readouterr().out
    written = tmp_path / "curves"
    assert f"curves written to {written}" in out
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves"]


def test_jax_float64_turns_x64_on_and_says_so(capsys, monkeypatch):
    jax = pytest.importorskip("jax", reason="jax not installed")
    seen = []
    monkeypatch.setattr(cli, "_demo", lambda args, plot: seen.append(args) or 0)
    jax.config.update("jax_enable_x64", False)
    try:
        argv = ["demo", "--backend", "jax", "--dtype", "float64", "--plot", "none"]
        assert main(argv) == 0
        assert jax.config.jax_enable_x64
    finally:
        jax.config.update("jax_enable_x64", True)
    assert "turned on JAX's 64-bit mode" in capsys.readouterr().out
    assert len(seen) == 1
    assert main(argv) == 0  # already on: nothing to say
    assert "64-bit" not in capsys.readouterr().out


def test_ctrl_c_is_not_a_traceback(capsys, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_demo", interrupted)
    assert main(["demo", "--plot", "none"]) == 130
    assert "interrupted" in capsys.readouterr().err
