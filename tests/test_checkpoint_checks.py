"""Loading checks every checkpoint gets from ``minigan.checkpoint`` (issue 22): a file whose
zip holds a member that is not an array, or whose optimizer step is negative, is one
``DamagedFileError`` line naming the file, never a traceback (today's were "'bytes' object has
no attribute 'dtype'" and a ZeroDivisionError at the first step after resuming)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from minigan.backend import manual_seed
from minigan.checkpoint import DamagedFileError, load_checkpoint, read_npz
from minigan.data import DataLoader, make_synthetic_digits
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.trainer import GANTrainer, TrainConfig


def tiny_trainer(out_dir) -> GANTrainer:
    manual_seed(0)
    G = dcgan_init(Generator(z_size=4, conv_dim=4, image_size=32, channels=3))
    D = dcgan_init(Discriminator(conv_dim=4, image_size=32, channels=3))
    images, _ = make_synthetic_digits(16, seed=0, size=32, channels=3)
    loader = DataLoader(images, batch_size=8, seed=0)
    return GANTrainer(G, D, loader, TrainConfig(epochs=1, z_size=4, num_samples=4, seed=0,
                                                max_steps=1), out_dir)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real trainer checkpoint after one step, as {key: array}."""
    out = tmp_path_factory.mktemp("run")
    trainer = tiny_trainer(out)
    trainer.fit(progress=False)
    with np.load(trainer.checkpoint_path) as archive:
        return {key: archive[key] for key in archive.files}


def one_line(error: BaseException, path) -> str:
    message = str(error)
    assert isinstance(error, DamagedFileError) and message.startswith(f"{path}: ")
    assert "\n" not in message
    return message


@pytest.mark.parametrize("key, value", [
    ("opt_g/step", np.asarray(-1)),           # the case: Adam's 1 - beta**0 = 0
    ("opt_d/step", np.asarray(-7)),
    ("opt_g/step", np.asarray(2.5)),
    ("opt_d/step", np.asarray([1, 2])),
    ("progress/step", np.asarray(-3)),
])
def test_a_bad_step_count_is_one_line_wherever_the_checkpoint_is_read(saved, tmp_path, key,
                                                                       value):
    path = tmp_path / "checkpoint.npz"
    np.savez(path, **{**saved, key: value})
    with pytest.raises(DamagedFileError) as info:
        load_checkpoint(path)
    assert f"{key.replace('/', ' ')} must be a whole number, 0 or more" in one_line(info.value,
                                                                                    path)
    with pytest.raises(DamagedFileError):      # and so the trainer refuses it before training
        tiny_trainer(tmp_path / "resume").load_checkpoint(path)


def test_a_zip_member_that_is_not_an_array_is_one_line(saved, tmp_path):
    path = tmp_path / "checkpoint.npz"
    np.savez(path, **saved)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("G/extra.weight", b"raw bytes, not a .npy file")
    with pytest.raises(DamagedFileError) as info:
        read_npz(path, "trainer checkpoint")
    assert "'G/extra.weight' is not an array (.npy) but bytes" in one_line(info.value, path)
    with pytest.raises(DamagedFileError):
        tiny_trainer(tmp_path / "resume").load_checkpoint(path)


def test_a_sound_checkpoint_still_loads_and_keeps_its_history_column_of_steps(saved, tmp_path):
    path = tmp_path / "checkpoint.npz"
    np.savez(path, **saved)
    sections = load_checkpoint(path)
    assert int(sections["opt_g"]["step"]) == 1 and sections["history"]["step"].ndim == 1
    trainer = tiny_trainer(tmp_path / "resume")
    trainer.load_checkpoint(path)
    assert trainer.opt_g.step_count == 1 and trainer.step == 1
