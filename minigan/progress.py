"""The progress bar minigan draws: a widget in a notebook that can show one, text elsewhere.

``tqdm.auto`` picks the widget bar inside Jupyter, but where ipywidgets is not installed it warns
("TqdmWarning: IProgress not found") and draws text anyway. minigan asks for the widget bar
only when ipywidgets can be imported, so a notebook without it gets the text bar and no
warning. ``pip install -e ".[notebook]"`` installs ipywidgets.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm, trange
else:
    from tqdm.std import tqdm, trange

__all__ = ["tqdm", "trange"]
