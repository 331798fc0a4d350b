"""A folder of pictures as a dataset: the same preparation as torchvision's ImageFolder with
Resize and CenterCrop, so a DCGAN trained here sees what PyTorch's DCGAN example would see."""

import numpy as np
import pytest
from PIL import Image

from minigan.data import DataError, dataset_label, load_dataset, load_image_folder
from minigan.data.folder import find_pictures, resize_and_center_crop


def picture(path, width, height, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8).squeeze()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=None).save(path)
    return path


def test_each_subfolder_is_a_class_and_every_picture_becomes_a_square(tmp_path):
    picture(tmp_path / "photos" / "cats" / "a.png", 100, 60, seed=1)
    picture(tmp_path / "photos" / "cats" / "b.jpg", 40, 90, seed=2)
    picture(tmp_path / "photos" / "dogs" / "c.png", 64, 64, seed=3, mode="L")   # grey -> RGB
    (tmp_path / "photos" / "dogs" / "notes.txt").write_text("not a picture")    # ignored
    images, labels = load_image_folder(tmp_path / "photos", size=32, progress=False)
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 1]                 # sorted folder names: cats 0, dogs 1
    assert dataset_label(tmp_path / "photos") == "photos"


def test_a_folder_is_also_a_dataset_with_only_a_train_split(tmp_path):
    picture(tmp_path / "flat" / "x.png", 20, 20)
    images, labels = load_dataset(tmp_path / "flat", size=8)
    assert images.shape == (1, 3, 8, 8) and labels.tolist() == [0]
    with pytest.raises(DataError, match="no 'test' split"):
        load_dataset(tmp_path / "flat", "test")


def test_a_damaged_picture_or_an_empty_folder_is_one_line_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no pictures"):
        load_image_folder(tmp_path / "empty", progress=False)
    bad = tmp_path / "bad" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"broken.png is not a readable picture"):
        load_image_folder(tmp_path / "bad", progress=False)
    one = picture(tmp_path / "one.png", 8, 8)          # a picture given for its folder
    with pytest.raises(DataError, match="one.png is a file: give the folder that holds"):
        load_image_folder(one, progress=False)


@pytest.mark.parametrize("width, height", [(100, 60), (37, 90), (64, 64), (65, 64)])
def test_resize_and_center_crop_match_torchvision(tmp_path, width, height):
    transforms = pytest.importorskip("torchvision.transforms")
    image = Image.open(picture(tmp_path / "p.png", width, height, seed=width)).convert("RGB")
    ours = np.asarray(resize_and_center_crop(image, 32))
    theirs = np.asarray(transforms.Compose([transforms.Resize(32),
                                            transforms.CenterCrop(32)])(image))
    assert ours.shape == theirs.shape == (32, 32, 3)
    np.testing.assert_array_equal(ours, theirs)


# ------------------------------------------------------------ the rule of which files count
def test_pictures_at_any_depth_of_a_class_subfolder_count_hidden_and_other_files_do_not(
        tmp_path):
    root = tmp_path / "photos"
    picture(root / "cats" / "a.png", 20, 20)
    picture(root / "cats" / "kittens" / "deep.png", 20, 20, seed=1)   # depth 2: still a cat
    picture(root / "dogs" / "b.PNG", 20, 20, seed=2)                  # any case
    picture(root / ".ipynb_checkpoints" / "c.png", 20, 20)            # hidden folder
    picture(root / "dogs" / ".hidden.png", 20, 20)                    # hidden file
    (root / "dogs" / "labels.csv").write_text("not a picture")
    (root / "empty").mkdir()                                          # no pictures: no class
    (root / "cats" / "loop").symlink_to(root, target_is_directory=True)   # not followed
    files, labels, classes = find_pictures(root)
    assert [f.relative_to(root).as_posix() for f in files] == [
        "cats/a.png", "cats/kittens/deep.png", "dogs/b.PNG"]
    assert labels == [0, 0, 1] and classes == ["cats", "dogs"]


def test_pictures_beside_class_subfolders_are_refused_saying_why(tmp_path):
    root = tmp_path / "photos"
    picture(root / "top.png", 20, 20)
    picture(root / "cats" / "a.png", 20, 20)
    with pytest.raises(DataError, match=r"1 picture\(s\) of its own \(such as top.png\) and 1 "
                                        r"subfolder\(s\).*ImageFolder.*skip"):
        load_image_folder(root, progress=False)


def test_a_run_folder_is_never_read_as_pictures(tmp_path):
    run = tmp_path / "run"
    picture(run / "samples" / "epoch_001.png", 20, 20)
    picture(run / "real_samples.png", 20, 20)
    (run / "config.json").write_text("{}")
    with pytest.raises(DataError, match="holds a minigan run"):
        load_image_folder(run, progress=False)
    # --out inside --dataset: the run's own samples are skipped, with a warning.
    data = tmp_path / "photos"
    picture(data / "a.png", 20, 20)
    picture(data / "b.png", 20, 20, seed=1)
    nested = data / "my_run"
    picture(nested / "samples" / "epoch_001.png", 20, 20)
    (nested / "checkpoint.npz").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"skipping .*my_run: it holds a minigan run"):
        images, labels = load_image_folder(data, size=8, progress=False)
    assert len(images) == 2 and labels.tolist() == [0, 0]


def test_an_empty_dataset_name_is_not_the_current_folder(tmp_path, monkeypatch):
    import argparse

    from minigan.data import is_image_folder
    from minigan.scripts import dataset_argument

    monkeypatch.chdir(tmp_path)
    picture(tmp_path / "here.png", 20, 20)
    assert not is_image_folder("") and not is_image_folder("  ")
    with pytest.raises(argparse.ArgumentTypeError, match=r"empty.*'\.' for the current folder"):
        dataset_argument("")
    with pytest.raises(DataError, match="empty path"):
        load_image_folder("", progress=False)
    assert dataset_argument(".") == "."          # asked for explicitly: fine


def test_an_empty_dataset_from_a_shell_is_one_line(tmp_path):
    from tests.other_uses import one_line_error, run_example

    result = run_example("train_classifier.py", "--dataset", "", "--out", tmp_path / "f.npz",
                         timeout=120)
    assert one_line_error(result) and "--dataset: empty" in result.stderr, result.stderr


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path):
    """Issue 22: 16-bit PNGs loaded almost white (every value above 255 became 255)."""
    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1040).astype(np.uint16)  # 0..65520
    path = tmp_path / "deep" / "ramp16.png"
    path.parent.mkdir()
    Image.fromarray(ramp).save(path)
    with Image.open(path) as saved:
        assert saved.mode.startswith("I")               # really a 16-bit file
    images, _ = load_image_folder(path.parent, size=8, progress=False)
    expected = np.round(ramp / 257).astype(np.uint8)
    for channel in images[0]:
        np.testing.assert_array_equal(channel, expected)
    assert images.mean() < 140                          # not "almost white"


@pytest.mark.parametrize("width", [100, 40])   # above 2x the limit (PIL raises), above 1x (warns)
def test_a_decompression_bomb_is_one_line_naming_the_file(tmp_path, monkeypatch, width):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)   # so the bomb can be tiny
    bomb = picture(tmp_path / "bombs" / "bomb.png", width, 40)
    with pytest.raises(DataError) as info:
        load_image_folder(bomb.parent, size=8, progress=False)
    message = str(info.value)
    assert message.startswith(f"{bomb} is too large") and "decompression bomb" in message
    assert "\n" not in message


def test_a_classifier_on_a_one_class_folder_is_refused_not_scored_1(tmp_path):
    """Issue 22: train_classifier.py on a folder without class subfolders said accuracy 1.0."""
    from tests.other_uses import run_example

    for i in range(12):
        picture(tmp_path / "faces" / f"{i}.png", 16, 16, seed=i)
    result = run_example("train_classifier.py", "--dataset", tmp_path / "faces", "--out",
                         tmp_path / "f.npz", "--batch-size", 4, timeout=120)
    errors = [ln for ln in result.stderr.splitlines() if "error" in ln]   # beside the bar
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert errors == [f"error: {tmp_path / 'faces'}: all 12 images have the label 0: a "
                      f"classifier needs at least two classes to tell apart (a folder of "
                      f"pictures gives one class per subfolder)"], result.stderr
    assert not (tmp_path / "f.npz").exists()
