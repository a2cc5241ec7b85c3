"""CelebA read from torchvision's file layout (aligned JPEGs, list_attr_celeba.txt with one or two
spaces between columns, list_eval_partition.txt). Images are synthetic JPEGs of the real size."""

import numpy as np
import pytest
from PIL import Image

from mmrepro.data.celeba import ATTRIBUTES, CelebA
from mmrepro.errors import DataError

N = 40


def write_synthetic_celeba(root, n=N, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for i, name in enumerate(names):
        pixels = np.full((218, 178, 3), 40 + 5 * i, dtype=np.uint8)
        pixels[60:160, 40:140] = rng.integers(0, 256, 3, dtype=np.uint8)  # a centred "face" block
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=95)
    attrs = np.where(rng.random((n, 40)) < 0.3, 1, -1)
    header = " ".join(ATTRIBUTES)
    rows = [name + " " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, attrs)]  # "  1" / " -1" spacing
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{header}\n" + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{name} {0 if i < 30 else 1 if i < 35 else 2}\n"
                                                            for i, name in enumerate(names)))
    return attrs


def test_images_are_cropped_resized_and_attributes_are_plus_minus_one(tmp_path):
    attrs = write_synthetic_celeba(tmp_path)
    dm = CelebA(root=str(tmp_path), normalize="unit")
    dm.setup()
    sizes = {s: len(dm.split(s)["image"]) for s in ("train", "val", "test")}
    assert sizes == {"test": 4, "val": 2, "train": 34}
    train = dm.split("train")
    assert train["image"].shape == (34, 3, 32, 32) and train["attributes"].shape == (34, 40)
    assert set(np.unique(train["attributes"].numpy()).tolist()) == {-1.0, 1.0}
    all_attrs = np.concatenate([dm.split(s)["attributes"].numpy() for s in ("train", "val", "test")])
    assert sorted(map(tuple, all_attrs)) == sorted(map(tuple, attrs.astype(np.float32)))
    assert 0 <= train["image"].min() and train["image"].max() <= 1
    # The centred 140-pixel crop cuts the 178x218 frame to the face block's surroundings: the
    # 32x32 centre is one flat colour (the block), the corners another (the background).
    img = train["image"][0].numpy()
    assert np.ptp(img[:, 12:20, 12:20], axis=(1, 2)).max() < 0.05 and abs(img[:, 16, 16] - img[:, 0, 0]).max() > 0


def test_official_partition_and_standardisation(tmp_path):
    write_synthetic_celeba(tmp_path)
    dm = CelebA(root=str(tmp_path), split="official")
    dm.setup()
    assert [len(dm.split(s)["image"]) for s in ("train", "val", "test")] == [30, 5, 5]
    assert abs(float(dm.split("train")["image"].mean())) < 1e-3
    assert any(p.suffix == ".npz" for p in (tmp_path / "celeba" / "mmrepro").iterdir())


def test_corrupt_attribute_file_and_missing_images_are_reported(tmp_path):
    with pytest.raises(DataError, match="list_attr_celeba.txt is missing.*torchvision.datasets.CelebA.*dataset.root"):
        CelebA(root=str(tmp_path)).setup()
    write_synthetic_celeba(tmp_path)
    path = tmp_path / "celeba" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(DataError, match="announces 40 images on line 1 but lists 37"):
        CelebA(root=str(tmp_path)).setup()
    lines[5] = lines[5].replace(" 1", " 2", 1) if " 1" in lines[5] else lines[5].replace("-1", " 2", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 6 is corrupt"):
        CelebA(root=str(tmp_path)).setup()
    write_synthetic_celeba(tmp_path / "again")
    (tmp_path / "again" / "celeba" / "img_align_celeba" / "000007.jpg").unlink()
    with pytest.raises(DataError, match="000007.jpg is missing"):
        CelebA(root=str(tmp_path / "again")).setup()
