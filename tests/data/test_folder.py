"""A folder of pictures as a dataset: the same preparation as torchvision's ImageFolder with
Resize and CenterCrop, so a DCGAN trained here sees what PyTorch's DCGAN example would see."""

import numpy as np
import pytest
from PIL import Image

from minigan.data import DataError, dataset_label, load_dataset, load_image_folder
from minigan.data.folder import resize_and_center_crop


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


@pytest.mark.parametrize("width, height", [(100, 60), (37, 90), (64, 64), (65, 64)])
def test_resize_and_center_crop_match_torchvision(tmp_path, width, height):
    transforms = pytest.importorskip("torchvision.transforms")
    image = Image.open(picture(tmp_path / "p.png", width, height, seed=width)).convert("RGB")
    ours = np.asarray(resize_and_center_crop(image, 32))
    theirs = np.asarray(transforms.Compose([transforms.Resize(32),
                                            transforms.CenterCrop(32)])(image))
    assert ours.shape == theirs.shape == (32, 32, 3)
    np.testing.assert_array_equal(ours, theirs)
