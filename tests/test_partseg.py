"""partseg: TPS warps, the bottleneck, the losses, landmark regression, the procedural
generator, resumable training and (slow) the tiny DAG."""

import math

import numpy as np
import pytest
import torch

from reprise.errors import ConfigError, DataError
from reprise.papers.partseg import evaluate as ev
from reprise.papers.partseg import generate as gen
from reprise.papers.partseg import model as M

GEN_CFG = {
    "pose": {"rotation": 20.0, "scale": [0.85, 1.15], "translation": 0.08},
    "clutter": 4,
    "noise": 0.02,
}


# --- TPS ----------------------------------------------------------------------------------------


def test_tps_identity_leaves_grid_and_image_unchanged():
    src = M.control_grid(3)[None].expand(2, -1, -1)
    warp = M.Warp(src, src.clone())
    grid = warp.grid(8, 8)
    assert torch.allclose(
        grid, M.pixel_grid(8, 8).view(1, 8, 8, 2).expand(2, -1, -1, -1), atol=1e-5
    )
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(warp(x), x, atol=1e-5)


def test_tps_interpolates_its_control_points():
    g = torch.Generator().manual_seed(0)
    w = M.Warp.random(4, g, points=4, jitter=0.1)
    coef = M.tps_fit(w.src, w.dst)
    assert torch.allclose(M.tps_apply(coef, w.src, w.src), w.dst, atol=1e-4)


def test_tps_affine_warp_is_inverted_exactly_on_a_grid():
    g = torch.Generator().manual_seed(1)
    w = M.Warp.random(3, g, rotation=20, scale=0.2, shift=0.1, jitter=0.0)  # affine
    pts = M.pixel_grid(9, 9).expand(3, -1, -1)
    f = M.tps_apply(M.tps_fit(w.src, w.dst), w.src, pts)
    inv = w.inverse()
    back = M.tps_apply(M.tps_fit(inv.src, inv.dst), inv.src, f)
    assert torch.allclose(back, pts, atol=1e-4)


def test_tps_inverse_of_a_bent_warp_is_close_on_a_grid():
    """A TPS fitted the other way through the control points undoes a non-affine warp up to
    a second-order error (exactly at the control points)."""
    g = torch.Generator().manual_seed(2)
    w = M.Warp.random(3, g, rotation=10, scale=0.1, shift=0.05, jitter=0.04)
    pts = M.pixel_grid(9, 9).expand(3, -1, -1)
    f = M.tps_apply(M.tps_fit(w.src, w.dst), w.src, pts)
    inv = w.inverse()
    back = M.tps_apply(M.tps_fit(inv.src, inv.dst), inv.src, f)
    err = (back - pts).norm(dim=-1)
    assert err.max() < 0.02
    assert (f - pts).norm(dim=-1).mean() > 0.05  # the warp itself moved the grid
    at_ctrl = M.tps_apply(M.tps_fit(inv.src, inv.dst), inv.src, w.dst)
    assert torch.allclose(at_ctrl, w.src, atol=1e-4)


# --- bottleneck and losses ----------------------------------------------------------------------


def test_bottleneck_per_part_vectors_by_hand():
    # a 2×2 map, background + 2 parts; part 1 covers the left column fully, part 2 half of
    # the top-right pixel; the background takes the rest
    parts = torch.zeros(1, 3, 2, 2)
    parts[0, 1, :, 0] = 1.0
    parts[0, 2, 0, 1] = 0.5
    parts[0, 0] = 1 - parts[0, 1:].sum(0)
    feats = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]])[None]
    f = M.squeeze(parts, feats)
    # background: weights 0.5 at (0,1), 1 at (1,1) -> (0.5*2 + 4) / 1.5
    want = torch.tensor([[5 / 1.5, 50 / 1.5], [2.0, 20.0], [2.0, 20.0]])
    assert torch.allclose(f[0], want)
    painted = M.expand(parts, f)
    assert torch.allclose(painted[0, :, 1, 0], want[1])  # part 1's vector, pure
    assert torch.allclose(painted[0, :, 0, 1], 0.5 * want[0] + 0.5 * want[2])


def test_concentration_is_zero_for_a_point_and_grows_with_spread():
    point = torch.zeros(1, 1, 8, 8)
    point[0, 0, 3, 4] = 1
    spread = torch.ones(1, 1, 8, 8)
    assert M.concentration(point) < 1e-8
    assert M.concentration(spread) > 0.5
    blob = torch.zeros(1, 1, 8, 8)
    blob[0, 0, 2:5, 2:5] = 1
    split = torch.zeros(1, 1, 8, 8)
    split[0, 0, 0:2, 0:2] = split[0, 0, 6:8, 6:8] = 1
    assert M.gaussian_concentration(blob, 0.15) < M.gaussian_concentration(split, 0.15)


def test_centroids_in_grid_coordinates():
    p = torch.zeros(1, 1, 4, 4)
    p[0, 0, 0, 3] = 1  # top-right pixel centre: x = 0.75, y = -0.75
    assert torch.allclose(M.centroids(p), torch.tensor([[[0.75, -0.75]]]))


def test_arcface_prefers_separated_parts():
    torch.manual_seed(0)
    arc = M.ArcFace(4, 3)
    labels = torch.arange(3)
    good = arc.weight.detach().clone()
    assert arc(good, labels) < arc(good[[1, 2, 0]], labels)


def test_models_train_step_and_ablation_switches():
    x = torch.rand(2, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    weights = {"l2": 1, "ssim": 0.1, "arcface": 0.1, "concentration": 1, "gaussian": 1,
               "background": 1, "smoothness": 1, "equivariance": 1, "semantic": 1,
               "orthogonality": 1}  # fmt: skip
    for kw in ({}, {"bottleneck": False}, {"concentration": "plain"}, {"method": "scops"}):
        cfg = M.Config(parts=3, width=8, weights=weights, **kw)
        model = M.build(cfg)
        loss, terms = model.losses(x, M.Warp.random(2, g))
        loss.backward()
        assert math.isfinite(loss.item())
        assert ("gaussian" in terms) == (cfg.concentration == "improved")
        parts, vectors = model.features(x)
        assert parts.shape == (2, 4, 8, 8) and vectors.shape[:2] == (2, 4)
    with pytest.raises(ConfigError, match="method"):
        M.build(M.Config(method="dino"))


def test_perceptual_loss_loads_weights_only_file(tmp_path):
    from reprise.errors import CheckpointError

    state = {f"features.{i}.weight": torch.randn(4, c, 3, 3) for i, c in ((0, 3), (2, 4))}
    state |= {f"features.{i}.bias": torch.zeros(4) for i in (0, 2)}
    torch.save(state, tmp_path / "vgg.pt")
    loss = M.Perceptual(str(tmp_path / "vgg.pt"))
    a = torch.rand(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    assert loss(a, a, mask) == 0
    assert loss(a, torch.rand(1, 3, 8, 8), mask) > 0
    torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="features"):
        M.Perceptual(str(tmp_path / "bad.pt"))


# --- evaluation ---------------------------------------------------------------------------------


def test_landmark_regression_exact_case_has_zero_error():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 10))  # 4 centroids -> 5 landmarks, no intercept
    xtr, xte = rng.uniform(0, 32, (50, 4, 2)), rng.uniform(0, 32, (20, 4, 2))
    ytr = (xtr.reshape(50, -1) @ w).reshape(50, 5, 2)
    yte = (xte.reshape(20, -1) @ w).reshape(20, 5, 2)
    pred = ev.regress_landmarks(xtr, ytr, xte)
    assert ev.landmark_error(pred, yte, np.full(20, 7.0)) < 1e-8
    # an intercept cannot be fitted: a constant offset leaves an error
    pred = ev.regress_landmarks(xtr, ytr + 5.0, xte)
    assert ev.landmark_error(pred, yte + 5.0, np.full(20, 7.0)) > 0.1


def test_landmark_error_is_normalised_in_percent():
    truth = np.zeros((2, 1, 2))
    pred = np.array([[[3.0, 4.0]], [[0.0, 1.0]]])
    assert ev.landmark_error(pred, truth, np.array([10.0, 1.0])) == pytest.approx(75.0)


def test_foreground_iou_and_clustering_scores():
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, :2] = 1
    labels = np.zeros((1, 4, 4), int)
    labels[0, :3] = 2
    assert ev.foreground_iou(labels, masks) == pytest.approx(8 / 12)
    perfect = np.tile(np.array([3, 1, 2]), (40, 1))
    s = ev.clustering_scores(perfect)
    assert s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0)
    assert s["nmi_chance"] < 0.2
    assert ev.clustering_scores(np.zeros((40, 3), int))["nmi"] == pytest.approx(0.0)


def test_part_nmi_is_one_for_a_relabelled_truth_and_zero_for_one_label():
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 4, (3, 8, 8))
    s = ev.part_scores((masks * 7) % 5, masks)  # a permutation of the labels
    assert s["part_nmi"] == pytest.approx(1.0) and s["part_nmi_chance"] < 0.1
    assert ev.part_scores(np.ones_like(masks), masks)["part_nmi"] == pytest.approx(0.0)


def test_keypoint_labels_read_the_landmark_pixel():
    labels = np.arange(16).reshape(1, 4, 4)
    assert ev.keypoint_labels(labels, np.array([[[2.5, 1.5], [0.2, 3.9]]])).tolist() == [[6, 12]]


# --- generator ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces():
    return gen.generate("faces", 64, 32, 0, GEN_CFG)


@pytest.fixture(scope="module")
def birds():
    return gen.generate("birds", 64, 32, 0, GEN_CFG)


def _label_near(masks, landmarks, radius=1):
    """The set of mask labels within `radius` pixels of each landmark: list of (N, L) sets."""
    n, h, w = masks.shape
    out = []
    for i in range(n):
        row = []
        for x, y in landmarks[i]:
            cx, cy = int(np.floor(x)), int(np.floor(y))
            patch = masks[
                i, max(cy - radius, 0) : cy + radius + 1, max(cx - radius, 0) : cx + radius + 1
            ]
            row.append(set(patch.ravel().tolist()))
        out.append(row)
    return out


def test_face_masks_match_landmarks(faces):
    m, lm = faces["masks"], faces["landmarks"]
    cat = gen.CATEGORIES["faces"]
    expect = [cat.parts.index(p) + 1 for p in ("eye", "eye", "nose", "mouth", "mouth")]
    labels = ev.keypoint_labels(m, lm)
    eye = cat.parts.index("eye") + 1
    assert (labels[:, :3] == expect[:3]).all()  # eye centres and the nose point: inside
    for row in _label_near(m, lm):  # mouth corners: at the lips' edge
        assert all(e in near for e, near in zip(expect, row, strict=True))
    # at 64 px, each eye's pixels (those nearer to it than to the other eye) are centred on
    # its landmark
    big = gen.generate("faces", 16, 64, 3, GEN_CFG)
    ys, xs = np.mgrid[:64, :64] + 0.5
    for i in range(16):
        on = big["masks"][i] == eye
        d = [np.hypot(xs - x, ys - y) for x, y in big["landmarks"][i, :2]]
        for j in range(2):
            mine = on & (d[j] < d[1 - j])
            centre = np.array([xs[mine].mean(), ys[mine].mean()])
            assert np.abs(centre - big["landmarks"][i, j]).max() < 0.5
    # the normaliser is the inter-ocular distance
    assert np.allclose(faces["norm"], np.linalg.norm(lm[:, 0] - lm[:, 1], axis=-1))


def test_bird_masks_match_landmarks(birds):
    cat = gen.CATEGORIES["birds"]
    expect = [cat.parts.index(p) + 1 for p in ("beak", "head", "wing", "tail", "body")]
    labels = ev.keypoint_labels(birds["masks"], birds["landmarks"])
    assert (labels[:, 1:] == expect[1:]).all()
    for row in _label_near(birds["masks"], birds["landmarks"]):
        assert expect[0] in row[0]  # the beak is a pixel thin: it is next to the point
    fg = birds["masks"] > 0
    assert ((birds["norm"] > 5) & (birds["norm"] < 32)).all() and fg[:, 0].sum() < fg.sum() / 50


def test_generator_is_seeded_and_varied(faces):
    again = gen.generate("faces", 64, 32, 0, GEN_CFG)
    assert all(np.array_equal(faces[k], again[k]) for k in ("images", "masks", "landmarks"))
    other = gen.generate("faces", 64, 32, 1, GEN_CFG)
    assert not np.array_equal(faces["images"], other["images"])
    assert faces["images"].dtype == np.uint8 and faces["images"].shape == (64, 3, 32, 32)
    assert set(np.unique(faces["masks"])) == set(range(6))
    centres = faces["landmarks"].mean(1)
    assert centres.std(0).min() > 1.0  # pose jitter moves the objects


def test_generated_split_roundtrip_and_bad_file(tmp_path, faces):
    gen.save(tmp_path / "f.npz", "faces", faces)
    back = gen.load(tmp_path / "f.npz")
    assert back["category"] == "faces" and list(back["parts"]) == list(
        gen.CATEGORIES["faces"].parts
    )
    assert np.array_equal(back["masks"], faces["masks"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a partseg data split"):
        gen.load(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="unknown category"):
        gen.generate("cars", 2, 32, 0, GEN_CFG)


# --- training -----------------------------------------------------------------------------------

WARP = {"points": 3, "rotation": 10.0, "scale": 0.1, "shift": 0.05, "jitter": 0.05}
TRAIN = {"steps": 4, "batch_size": 4, "lr": 1e-3, "weight_decay": 5e-4, "decay_every": 3,
         "decay": 0.5, "save_every": 2, "warp": WARP}  # fmt: skip
MODEL = {"width": 8, "weights": {"l2": 1.0, "arcface": 0.01, "concentration": 0.01}}


def test_training_resumes_bit_identically(tmp_path, faces):
    from reprise.papers.partseg.train import fit, images, model_config
    from reprise.resume import Resume

    cfg = model_config({"parts": 3}, MODEL)
    x = images(faces)[:16]
    whole, hist = fit(cfg, x, TRAIN, seed=5)
    resume = Resume(tmp_path / "state", key="k")
    fit(cfg, x, {**TRAIN, "steps": 2}, seed=5, resume=resume)  # "killed" after step 2
    torch.manual_seed(123)  # a fresh process: nothing of the first run's RNG survives
    resumed, hist2 = fit(cfg, x, TRAIN, seed=5, resume=resume)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert hist == hist2 and [r["step"] for r in hist] == [2, 4]


def test_model_config_merges_run_over_model_and_refuses_unknown_keys():
    from reprise.papers.partseg.train import model_config

    cfg = model_config({"parts": 8, "weights": {"arcface": 0.0}}, MODEL)
    assert cfg.parts == 8 and cfg.weights == {"l2": 1.0, "arcface": 0.0, "concentration": 0.01}
    with pytest.raises(ConfigError, match="unknown model option"):
        model_config({"parts": 4}, {**MODEL, "depth": 3})


def test_metrics_declare_every_run_and_margin():
    from reprise.papers.partseg.metrics import METRICS

    rows = [
        {"run": "faces_k4", "landmark_error": 10.0},
        {"run": "faces_k4_scops", "landmark_error": 13.5},
    ]
    out = METRICS.compute(rows)
    assert set(out) == set(METRICS)
    assert out["faces_k4_margin_vs_scops"] == pytest.approx(3.5)
    assert out["faces_k4_margin_vs_no_bottleneck"] is None and out["faces_k8_nmi"] is None


# --- the tiny DAG -------------------------------------------------------------------------------


_SMALL = {"train": 48, "test": 24, "size": 32}
TINY = {
    "data": {"faces": _SMALL, "birds": _SMALL},
    "train": {"steps": 4, "save_every": 2, "batch_size": 4},
    "model": {"width": 4},
    "evaluation": {"fit_size": 48, "tsne_images": 8, "overlay_images": 2},
}


@pytest.mark.slow
def test_tiny_dag_builds_every_figure_and_claim(project_copy):
    """`snakemake partseg report` on a tiny config: every figure, metrics.json, the claims."""
    import json

    from tests.conftest import build_tiny_paper

    out = build_tiny_paper(project_copy, "partseg", TINY)
    for name in ("part_overlays", "landmark_error", "foreground_iou", "part_tsne"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["faces_k4_landmark_error"] > 0 and metrics["birds_k4_nmi"] is not None
    assert metrics["faces_k4_margin_vs_scops"] is not None and metrics["celeba_k8_nmi"] is None
    report = (project_copy / "results" / "smoke" / "REPORT.md").read_text()
    for claim in ("beats-scops-faces", "parts-are-semantic", "bottleneck-avoids-degenerate-parts"):
        assert f"**{claim}**" in report


KILL_SCRIPT = """
import sys, torch
import numpy as np
from reprise.papers.partseg.train import fit, model_config
from reprise.resume import Resume
torch.set_num_threads(1)
out, state, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = torch.from_numpy(np.load(sys.argv[4])).float() / 255
cfg = model_config({"parts": 3}, %r)
train = dict(%r, steps=steps, save_every=1)
model, hist = fit(cfg, x, train, seed=5, resume=Resume(__import__("pathlib").Path(state), "k"))
torch.save({"state": model.state_dict(), "hist": hist}, out)
"""


@pytest.mark.slow
def test_training_resumes_after_sigkill(tmp_path, faces):
    """A training process killed (SIGKILL) after some saved steps and started again ends
    bit-identical to one never killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    np.save(tmp_path / "x.npy", faces["images"][:16])
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT % (MODEL, TRAIN))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def cmd(out, steps, state="state"):
        args = [str(tmp_path / out), str(tmp_path / state), str(steps), str(tmp_path / "x.npy")]
        return [sys.executable, str(script), *args]

    proc = subprocess.Popen(cmd("killed.pt", 400), env=env)
    state = tmp_path / "state" / "state.pt"
    deadline = time.time() + 60
    while not state.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(state, weights_only=True)["state"]["step"]
    assert 1 <= saved < 400
    steps = saved + 2
    subprocess.run(cmd("resumed.pt", steps), env=env, check=True)
    subprocess.run(cmd("whole.pt", steps, "other"), env=env, check=True)
    whole = torch.load(tmp_path / "whole.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    for a, b in zip(whole["state"].values(), resumed["state"].values(), strict=True):
        assert torch.equal(a, b)
    assert resumed["hist"] == whole["hist"]
