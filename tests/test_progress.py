"""minigan.progress picks tqdm's widget bar only where ipywidgets can be imported."""

from __future__ import annotations

import importlib
import importlib.util

import tqdm.std

import minigan.progress


def reload_with_widgets(monkeypatch, present: bool):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "ipywidgets":
            return real_find_spec("json") if present else None   # any importable module
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    return importlib.reload(minigan.progress)


def test_text_bar_without_ipywidgets(monkeypatch):
    try:
        progress = reload_with_widgets(monkeypatch, present=False)
        assert progress.tqdm is tqdm.std.tqdm
    finally:
        monkeypatch.undo()
        importlib.reload(minigan.progress)


def test_automatic_bar_with_ipywidgets(monkeypatch):
    import tqdm.auto

    try:
        progress = reload_with_widgets(monkeypatch, present=True)
        assert progress.tqdm is tqdm.auto.tqdm
    finally:
        monkeypatch.undo()
        importlib.reload(minigan.progress)
