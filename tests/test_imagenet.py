"""ImageNet from tiny archives in the official formats: the devkit's synset table and
validation ground truth, the flat validation tar, the train tar of per-class tars; labels in
torchvision's (sorted WordNet id) order, resize-256 centre-224 crops, shards on disk."""

import numpy as np
import pytest
import torch

from reprise import data
from reprise.data import imagenet
from reprise.data.prepared import load_split
from reprise.errors import DataError
from tests.tiny_datasets import (
    imagenet_colour,
    imagenet_wnids,
    jpeg_bytes,
    replace_members,
    trust_files_in,
    write_imagenet,
)

VAL_IDS = [1, 390, 1000, 7, 390, 2, 555]  # ILSVRC2012_IDs of the 7 validation images


@pytest.fixture
def root(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "imagenet"
    wnids = imagenet_wnids()
    by_id = write_imagenet(raw, VAL_IDS, {wnids[3]: 2, wnids[998]: 3})
    trust_files_in(monkeypatch, imagenet, raw)
    monkeypatch.setattr(imagenet, "VAL_IMAGES", len(VAL_IDS))
    monkeypatch.setattr(imagenet, "SHARD", 3)
    return tmp_path, by_id


def test_validation_labels_are_sorted_wordnet_ranks_via_the_synset_table(root):
    tmp_path, by_id = root
    data.prepare("imagenet", tmp_path, "test")
    d = data.load("imagenet", "test", tmp_path)
    wnids = sorted(by_id.values())
    assert d.classes == wnids and len(wnids) == 1000
    want = [wnids.index(by_id[t]) for t in VAL_IDS]
    assert d.y.tolist() == want and want != [t - 1 for t in VAL_IDS]
    assert d.x.shape == (7, 3, 224, 224)
    for x, label in zip(d.x, want, strict=True):  # solid images keep their class colour
        colour = torch.tensor(imagenet_colour(label), dtype=torch.float32) / 255
        assert (x.mean(dim=(1, 2)) - colour).abs().max() < 3 / 255


def test_split_is_shards_on_disk_and_a_limit_reads_only_what_it_needs(root):
    tmp_path, _ = root
    out = data.prepare("imagenet", tmp_path, "test")
    index = torch.load(out, weights_only=True)
    assert index["shards"] == ["test/00000.pt", "test/00001.pt", "test/00002.pt"]
    assert index["counts"] == [3, 3, 1]
    full = load_split(out)
    (out.parent / "test" / "00002.pt").unlink()  # the first 4 do not need the last shard
    part = load_split(out, limit=4)
    assert len(part) == 4 and torch.equal(part.x, full.x[:4]) and torch.equal(part.y, full.y[:4])
    with pytest.raises(DataError, match="00002.pt does not exist"):
        load_split(out)


def test_a_whole_sharded_split_is_memory_mapped_and_indexed_like_a_tensor(root):
    from reprise.data.prepared import ShardedImages

    tmp_path, _ = root
    out = data.prepare("imagenet", tmp_path, "test")
    whole = load_split(out, limit=len(VAL_IDS)).x  # read into memory
    lazy = load_split(out)
    assert isinstance(lazy.x, ShardedImages) and lazy.x.shape == whole.shape
    idx = torch.tensor([6, 0, 4, 3, 3])  # across all three shards, repeated
    assert torch.equal(lazy.x[idx], whole[idx])
    assert torch.equal(lazy.x[2:5], whole[2:5]) and torch.equal(lazy.x[-1], whole[-1])
    mask = torch.tensor([True, False, False, True, False, False, True])
    assert torch.equal(lazy.x[mask], whole[mask]) and lazy.x[idx].dtype == torch.float32
    assert torch.equal(lazy.subset(4).x, whole[:4]) and len(lazy.x) == 7
    with pytest.raises(IndexError, match="out of range for 7 images"):
        lazy.x[torch.tensor([7])]
    with pytest.raises(DataError, match="is sharded"):
        load_split(out, size=32)


def test_a_killed_prepare_resumes_from_its_shards(root, monkeypatch):
    tmp_path, _ = root
    out = data.prepare("imagenet", tmp_path, "test")
    first = torch.load(out.parent / "test" / "00000.pt", weights_only=True)
    out.unlink()
    (out.parent / "test" / "00001.pt").unlink()
    decoded = []
    crop = imagenet.centre_crop
    monkeypatch.setattr(imagenet, "centre_crop", lambda b, n: decoded.append(n) or crop(b, n))
    data.prepare("imagenet", tmp_path, "test")
    assert decoded == [f"ILSVRC2012_val_{n:08d}.JPEG" for n in (4, 5, 6)]  # shard 1 only
    again = torch.load(out.parent / "test" / "00000.pt", weights_only=True)
    assert torch.equal(first["x"], again["x"])


def test_train_images_come_from_the_per_class_tars(root):
    tmp_path, _ = root
    data.prepare("imagenet", tmp_path, "train")
    d = data.load("imagenet", "train", tmp_path)
    # the WordNet ids are generated in sorted order, so a class's rank is its position
    assert d.y.tolist() == [3, 3, 998, 998, 998] and d.x.shape == (5, 3, 224, 224)


def test_centre_crop_is_the_middle_of_the_shorter_side_resized_to_256():
    from io import BytesIO

    from PIL import Image

    img = Image.new("RGB", (512, 256), (255, 0, 0))
    img.paste((0, 255, 0), (128, 0, 384, 256))  # the middle half green: the crop is in it
    buf = BytesIO()
    img.save(buf, format="PNG")
    x = imagenet.centre_crop(buf.getvalue(), "wide.png")
    assert x.shape == (3, 224, 224) and x.dtype == np.uint8
    assert x[1].min() > 240 and x[0].max() < 15
    small = imagenet.centre_crop(jpeg_bytes((9, 9, 9), (40, 30)), "small.jpg")  # upscaled
    assert small.shape == (3, 224, 224)


def test_bad_archives_are_one_clear_error_and_leave_no_index(root):
    tmp_path, _ = root
    raw = tmp_path / "raw" / "imagenet"
    replace_members(raw / "ILSVRC2012_img_val.tar", {"ILSVRC2012_val_00000003.JPEG": b"junk"})
    trust = pytest.MonkeyPatch()
    with trust.context() as m:
        trust_files_in(m, imagenet, raw)
        with pytest.raises(DataError, match="cannot decode image ILSVRC2012_val_00000003.JPEG"):
            imagenet.prepare(raw, "test", data.prepared_path(tmp_path, "imagenet", "test"))
    assert not data.prepared_path(tmp_path, "imagenet", "test").exists()
    with pytest.raises(DataError, match="fails its md5 check"):
        data.prepare("imagenet", tmp_path, "test")  # the published checksum no longer holds


def test_devkit_and_tar_contents_are_checked(root, monkeypatch):
    tmp_path, _ = root
    raw = tmp_path / "raw" / "imagenet"
    monkeypatch.setattr(imagenet, "VAL_IMAGES", 8)
    with pytest.raises(DataError, match="has 7 labels; expected 8"):
        imagenet.devkit(raw / imagenet.DEVKIT)
    monkeypatch.setattr(imagenet, "VAL_IMAGES", 7)
    replace_members(raw / "ILSVRC2012_img_val.tar", {"extra/readme.txt": b"hello"})
    with pytest.raises(DataError, match="unexpected member extra/readme.txt"):
        imagenet.prepare(raw, "test", tmp_path / "out.pt")
    assert [r.filename for r in data.raw_files("imagenet", "test")] == [
        "ILSVRC2012_img_val.tar",
        "ILSVRC2012_devkit_t12.tar.gz",
    ]


def test_libre_fine_tunes_on_a_memory_mapped_split_as_on_one_in_memory(root):
    """The training loop only indexes batches, so the sharded split trains bit for bit as
    the same images loaded whole."""
    from reprise.models import build_model
    from reprise.papers.libre import model as bayes
    from reprise.papers.libre.finetune import finetune
    from tests.test_libre import FT

    tmp_path, _ = root
    out = data.prepare("imagenet", tmp_path, "test")
    weights = []
    for train in (load_split(out), load_split(out, limit=len(VAL_IDS))):
        torch.manual_seed(0)
        dnn = build_model("small_cnn", 1000, width=0.125)
        method = {"kind": "libre", "members": 2, "layers": 2, "alpha": 1.0, "gamma": 0.5}
        model = bayes.build("libre", dnn, method)
        finetune(model, train, {**FT, "epochs": 1, "batch_size": 4}, method, seed=0)
        weights.append(model.state_dict())
    assert all(torch.equal(v, weights[1][k]) for k, v in weights[0].items())
