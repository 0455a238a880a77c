"""The one progress switch (``probinfer._progress``): set_progress, PROBINFER_PROGRESS, CI."""

import io
import sys

import jax
import jax.numpy as jnp
import pytest

import probinfer as pi
from probinfer import _progress


@pytest.fixture(autouse=True)
def _automatic(monkeypatch):
    monkeypatch.delenv(_progress.ENV_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    yield
    pi.set_progress(None)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_automatic_mode_follows_the_terminal_and_ci(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert pi.progress_enabled()
    monkeypatch.setenv("CI", "true")
    assert not pi.progress_enabled()
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not pi.progress_enabled()


def test_environment_variable_and_switch(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    monkeypatch.setenv(_progress.ENV_VARIABLE, "0")
    assert not pi.progress_enabled()
    monkeypatch.setenv(_progress.ENV_VARIABLE, "on")
    assert pi.progress_enabled()
    pi.set_progress(False)
    assert not pi.progress_enabled()
    monkeypatch.setenv(_progress.ENV_VARIABLE, "maybe")
    pi.set_progress(None)
    with pytest.raises(ValueError, match="PROBINFER_PROGRESS must be one of"):
        pi.progress_enabled()
    with pytest.raises(TypeError, match="True, False or None"):
        pi.set_progress("yes")


def test_switch_silences_an_explicit_bar_and_keeps_results(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    scan = lambda ks, s: jax.lax.scan(lambda c, k: (c + jax.random.normal(k), c), s, ks)
    keys = jax.random.split(jax.random.key(0), 50)
    pi.set_progress(True)
    shown, out_shown = _progress.chunked_scan(scan, jnp.zeros(()), keys, True, "t")
    assert "t:" in sys.stderr.getvalue()
    pi.set_progress(False)
    monkeypatch.setattr("sys.stderr", _Terminal())
    hidden, out_hidden = _progress.chunked_scan(scan, jnp.zeros(()), keys, True, "t")
    assert sys.stderr.getvalue() == ""
    assert jnp.allclose(shown, hidden) and jnp.allclose(out_shown, out_hidden)
