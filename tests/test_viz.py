"""Pictures of a run: the loss plot is drawn without touching matplotlib's global backend.

A notebook that trains (which saves losses.png) must go on drawing its own plots inline, so
``plot_losses`` builds a ``matplotlib.figure.Figure`` directly instead of switching pyplot.
"""

import matplotlib
import numpy as np
from PIL import Image

from minigan.viz import plot_losses


def test_plot_losses_writes_a_png_and_leaves_the_backend_alone(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(matplotlib, "use", lambda *args, **kwargs: calls.append(args))
    steps = np.arange(1, 41)
    history = {"step": steps, "d_loss": np.linspace(1.4, 0.9, 40),
               "g_loss": np.linspace(0.7, 1.5, 40), "d_real": np.full(40, 0.7),
               "d_fake": np.full(40, 0.3)}
    metrics = {"epoch": [1, 2], "fid": [80.0, 60.0], "inception_score": [2.0, 2.5]}
    path = plot_losses(history, tmp_path / "losses.png", metrics)
    assert calls == []
    with Image.open(path) as image:
        width, height = image.size
    assert image.format == "PNG" and width > 2.5 * height   # three panels side by side
