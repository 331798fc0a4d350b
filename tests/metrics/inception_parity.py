"""Random FID Inception weights and inputs that anyone can rebuild from a seed, and the recorded
outputs of pytorch-fid's network on them (the fixture the parity test reads without torch).

Run ``python -m tests.metrics.inception_parity`` (needs torch and pytorch-fid) to record the
fixture again; it is ``fixtures/fid_inception_random.npz``, about 50 kB: the weights are not
stored, only the seed they are drawn from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minigan.metrics import inception_weights

FIXTURE = Path(__file__).parent / "fixtures" / "fid_inception_random.npz"
WEIGHT_SEED, IMAGE_SEED = 2015, 32
IMAGES = (2, 3, 32, 32)  # two 32x32 RGB images in [-1, 1], resized to 299x299 by both networks


def random_fid_weights(seed: int = WEIGHT_SEED) -> dict[str, np.ndarray]:
    """The fixture's random weights (``minigan.metrics.inception_weights.random_fid_weights``)."""
    return inception_weights.random_fid_weights(seed)


def random_images(seed: int = IMAGE_SEED) -> np.ndarray:
    """(2, 3, 32, 32) float64 images in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, IMAGES)


def pytorch_fid_outputs(state: dict[str, np.ndarray], images: np.ndarray, dtype: str,
                        weights_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pool3, logits) of pytorch-fid's own network with these weights: ``torch.save`` them
    to ``weights_file``, let ``fid_inception_v3`` load that file where it would download the
    real weights, and run ``InceptionV3`` (resize to 299, 2x - 1) on the images mapped to
    [0, 1], pytorch-fid's input range."""
    import torch
    from pytorch_fid import inception as pf

    torch.save({k: torch.from_numpy(np.array(v, order="C")) for k, v in state.items()},
               weights_file)
    built = []
    original_load, original_build = pf.load_state_dict_from_url, pf.fid_inception_v3

    def build():
        built.append(original_build())
        return built[-1]

    pf.load_state_dict_from_url = lambda *args, **kwargs: torch.load(weights_file)
    pf.fid_inception_v3 = build
    try:
        wrapper = pf.InceptionV3([pf.InceptionV3.DEFAULT_BLOCK_INDEX]).eval()
    finally:
        pf.load_state_dict_from_url, pf.fid_inception_v3 = original_load, original_build
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    # fid_inception_v3 loaded the weights into float32 parameters; load them again after the
    # conversion, so that float64 means float64 weights, not float32 ones widened.
    inception = built[0].to(torch_dtype)
    inception.load_state_dict(torch.load(weights_file))
    wrapper, fc = wrapper.to(torch_dtype), inception.fc.eval()
    with torch.no_grad():
        x01 = torch.from_numpy((images + 1) / 2).to(torch_dtype)
        pool3 = wrapper(x01)[0].flatten(1)
        logits = fc(pool3)
    return pool3.numpy().astype(np.float64), logits.numpy().astype(np.float64)


def record_fixture() -> None:
    import tempfile

    state = random_fid_weights()
    with tempfile.TemporaryDirectory() as tmp:
        pool3, logits = pytorch_fid_outputs(state, random_images(), "float64",
                                            Path(tmp) / "random.pth")
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, pool3=pool3, logits=logits,
                        weight_sum=np.float64(sum(float(v.sum()) for v in state.values())))
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


if __name__ == "__main__":
    record_fixture()
