"""AutoDA: the program space, the pruning stages, the interpreter, the lockstep decision-based
attacks (exact query counts, never a non-adversarial result) and the resumable search."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from reprise.attacks.decision import ATTACKS, Oracle, start_points
from reprise.papers.autoda.attack import Tuning, program_attack
from reprise.papers.autoda.program import (
    AUTODA_1ST,
    FIXED,
    VS_MUL,
    VV_ADD,
    VV_SUB,
    Program,
    inputs_check,
    inputs_ok,
    random_code,
    run_numpy,
    run_torch,
    stack,
)
from reprise.papers.autoda.search import distance_test
from tests.conftest import build_tiny_paper

# node indices: 0 s0, 1 x, 2 x_adv, 3 noise, 4 d, 5 |d|, 6 u
STEP_TOWARD_X = Program(((VS_MUL, 4, 0), (VV_ADD, 2, 7)))  # x_adv + s0·d: no noise


def linear_model(classes=10, dim=64, seed=0):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(dim, classes)
    return torch.nn.Sequential(torch.nn.Flatten(), layer).eval()


class Counting(torch.nn.Module):
    """Counts the images the model is asked about."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x):
        self.rows += len(x)
        return self.model(x)


CLOSER = ((VS_MUL, 4, 0), (VS_MUL, 3, 0), (VS_MUL, 8, 0), (VV_ADD, 7, 9), (VV_ADD, 2, 10))


def program(*nodes):
    return Program(tuple(nodes))


# ---- stage 1: the symbolic inputs check ---------------------------------------------------


def test_inputs_check_on_hand_built_programs():
    assert inputs_check(AUTODA_1ST)
    assert not inputs_check(STEP_TOWARD_X)  # ignores the noise
    assert not inputs_check(program((VV_ADD, 2, 3)))  # x_adv + noise: no x, no s0
    with_noise = program((VS_MUL, 3, 0), (VV_ADD, 2, 7))  # x_adv + s0·noise: no x
    assert not inputs_check(with_noise)
    assert inputs_check(program((VS_MUL, 3, 0), (VV_ADD, 4, 7), (VV_ADD, 2, 8)))
    # symbolic: noise - noise still "depends" on the noise, as in the official bit-or check
    assert inputs_check(program((VV_SUB, 3, 3), (VS_MUL, 4, 0), (VV_ADD, 7, 8), (VV_ADD, 2, 9)))


def test_generator_prior_and_vectorised_check_agree():
    code = random_code(np.random.default_rng(0), 2000, 20)
    ok = inputs_ok(code)
    assert (code[:, FIXED:, 1] < np.arange(FIXED, 20)).all()  # operands come before
    assert np.array_equal(ok, [inputs_check(Program.from_code(c)) for c in code])
    assert 0.3 < 1 - ok.mean() < 0.7  # the official search: 45.5% fail at length 24
    last = code[:, -1, 0]
    assert set(np.unique(last)) <= {4, 5, 6, 7}  # the output is a vector


# ---- stage 2: the distance test -----------------------------------------------------------


@pytest.mark.parametrize(("dim", "s0"), [(64, 0.07), (3072, 0.01)])
def test_distance_test(dim, s0):
    gen = torch.Generator().manual_seed(0)
    cases = [
        (AUTODA_1ST, True),
        (
            program(
                (VS_MUL, 4, 0), (VS_MUL, 3, 0), (VS_MUL, 8, 0), (VV_ADD, 7, 9), (VV_ADD, 2, 10)
            ),
            True,
        ),
        (program((VV_SUB, 3, 3), (VS_MUL, 7, 0), (VV_ADD, 2, 8)), False),  # x_adv: not closer
        (program((VS_MUL, 3, 0), (VS_MUL, 7, 0), (VV_ADD, 1, 8)), False),  # x + tiny: too close
        (program((VS_MUL, 3, 0), (VV_SUB, 2, 4), (VV_ADD, 8, 7)), False),  # away from x
    ]
    got = distance_test(stack([p for p, _ in cases]), s0, dim, 10, gen)
    assert got.tolist() == [want for _, want in cases]


# ---- the interpreter ------------------------------------------------------------------------


def test_interpreter_matches_numpy_on_random_programs():
    rng = np.random.default_rng(1)
    code = random_code(rng, 200, 16)
    programs = [Program.from_code(c) for c in code]
    g = torch.Generator().manual_seed(0)
    P, B, D = len(programs), 3, 20
    x, xa, nz = (torch.rand((P, B, D), generator=g, dtype=torch.float64) for _ in range(3))
    nz = nz * 2 - 1
    s0 = torch.rand((P, B), generator=g, dtype=torch.float64)
    live = np.array([p.live() for p in programs])
    out = run_torch(code, live, s0, x, xa, nz).numpy()
    finite = 0
    for i, p in enumerate(programs):
        for b in range(B):
            ref = run_numpy(p, s0[i, b].item(), x[i, b].numpy(), xa[i, b].numpy(), nz[i, b].numpy())
            np.testing.assert_allclose(out[i, b], ref, rtol=1e-9, atol=1e-9, equal_nan=True)
            finite += np.isfinite(ref).all()
    assert finite > 100


def test_autoda_1st_is_the_official_formula():
    g = np.random.default_rng(0)
    x, xa, noise, s0 = g.random(50), g.random(50), g.normal(size=50), 0.03
    d = x - xa
    u, n = d / np.linalg.norm(d), s0 * noise
    want = xa + d * np.dot(u + n, n) - np.linalg.norm(d) * n
    np.testing.assert_allclose(run_numpy(AUTODA_1ST, s0, x, xa, noise), want)
    assert "DOT" in AUTODA_1ST.text()


# ---- the oracle and the attacks -------------------------------------------------------------


def mean_threshold_model(threshold=0.25):
    """Class 1 iff the mean pixel exceeds `threshold`."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[1] = 1 / 64
        model[1].bias.copy_(torch.tensor([0.0, -threshold]))
    return model.eval()


def test_oracle_records_the_best_l2_after_each_query():
    model = mean_threshold_model()
    x = torch.zeros(1, 1, 8, 8)
    y = torch.zeros(1, dtype=torch.long)
    one = torch.ones(1, 8, 8)
    oracle = Oracle(model, x, y, budget=3, record=[1, 2, 3, 4])
    adv = oracle(torch.stack([x[0], one, 0.5 * one, 0.4 * one])[None])  # 4 asked, 3 allowed
    assert adv.tolist() == [[False, True, True, False]] and int(oracle.queries) == 3
    assert oracle.trace[:3, 0].tolist() == [float("inf"), 8.0, 4.0]
    assert np.isinf(float(oracle.trace[3, 0]))  # query 4 was not made
    oracle.finish()
    assert oracle.trace[3, 0] == 4.0 and oracle.best_l2[0] == 4.0
    torch.testing.assert_close(oracle.best, 0.5 * one[None])
    probe = oracle(0.3 * one[None], candidate=False)  # over budget: not made, reads False
    assert not probe.any() and int(oracle.queries) == 3


@pytest.mark.parametrize("method", [*ATTACKS, "autoda_1st"])
def test_attacks_count_queries_exactly_and_return_adversarial_points(method):
    torch.set_num_threads(1)
    inner = linear_model(seed=1)
    model = Counting(inner)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 8, 8, generator=g)
    y = inner(x).argmax(1)
    pool = torch.rand(40, 1, 8, 8, generator=g)
    budget = 300
    oracle = Oracle(model, x, y, budget, record=[50, 100, 300])
    x_adv = start_points(oracle, pool, inner(pool).argmax(1), g, tries=5)
    if method == "autoda_1st":
        program_attack(oracle, x_adv, g, [AUTODA_1ST], Tuning(s0_init=0.07))
    else:
        ATTACKS[method](oracle, x_adv, g)
    oracle.finish()
    assert int(oracle.queries.sum()) == model.rows  # every model row is one counted query
    assert (oracle.queries <= budget).all()
    found = torch.isfinite(oracle.best_l2)
    assert found.all()
    assert (oracle.queries == budget).all()  # they use their whole budget
    with torch.no_grad():
        assert (inner(oracle.best).argmax(1) != y).all()
    dist = (oracle.best - x).flatten(1).norm(dim=1)
    torch.testing.assert_close(dist, oracle.best_l2)
    assert (oracle.trace[1:] <= oracle.trace[:-1]).all()  # best so far never grows
    assert (oracle.trace[-1] < oracle.trace[0]).float().mean() > 0.5  # they make progress
    assert ((oracle.best >= 0) & (oracle.best <= 1)).all()


def test_hsja_does_not_depend_on_how_queries_are_split_into_model_calls():
    """The oracle's batch size (rows per model call; 512 on CPU by default) only chunks
    the calls: the same queries, counts, best points and trace for any size."""
    torch.set_num_threads(1)
    model = linear_model(seed=3)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 8, 8, generator=g)
    y = model(x).argmax(1)
    pool = torch.rand(40, 1, 8, 8, generator=g)
    runs = []
    for batch_size in (None, 7, 10**6):
        g.manual_seed(1)
        oracle = Oracle(model, x, y, 400, record=[100, 400], batch_size=batch_size)
        ATTACKS["hsja"](oracle, start_points(oracle, pool, model(pool).argmax(1), g), g)
        oracle.finish()
        runs.append((oracle.queries, oracle.best, oracle.best_l2, oracle.trace))
    assert runs[0][0].tolist() == [400] * 5
    for other in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other, strict=True))


def test_unreachable_images_keep_no_adversarial_point():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))  # always class 0
    x = torch.rand(3, 1, 8, 8)
    y = torch.zeros(3, dtype=torch.long)
    oracle = Oracle(model, x, y, budget=50)
    g = torch.Generator().manual_seed(0)
    x_adv = start_points(oracle, x, y, g, tries=10)
    ATTACKS["hsja"](oracle, x_adv, g)
    assert torch.isinf(oracle.best_l2).all() and torch.equal(oracle.best, x)


def test_program_attack_runs_many_programs_in_lockstep():
    """P programs × B images in one oracle equal each program run alone on a CPU (same
    noise order is not required): here only shapes, budgets and monotone progress."""
    model = linear_model(seed=2)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 8, 8, generator=g)
    y = model(x).argmax(1)
    pool = torch.rand(40, 1, 8, 8, generator=g)
    start = start_points(Oracle(model, x, y, 100), pool, model(pool).argmax(1), g)
    programs = [AUTODA_1ST, STEP_TOWARD_X]
    oracle = Oracle(model, x.repeat(2, 1, 1, 1), y.repeat(2), budget=100)
    oracle.best_l2 = (start - x).flatten(1).norm(dim=1).repeat(2)
    program_attack(oracle, start.repeat(2, 1, 1, 1), g, programs, Tuning(s0_init=0.07))
    assert (oracle.queries == 100).all()
    assert (oracle.best_l2 < (start - x).flatten(1).norm(dim=1).repeat(2)).any()


# ---- the search resumes after SIGKILL -------------------------------------------------------

SCRIPT = """
import logging, pathlib, sys, time
import torch
from reprise.resume import Resume
from reprise.papers.autoda.search import Evaluator, SearchConfig, search
from reprise.io import write_json

out, state_dir, marker = sys.argv[1:]
logging.basicConfig(level=logging.INFO)
torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)).eval()
g = torch.Generator().manual_seed(0)
x = torch.rand(40, 1, 8, 8, generator=g)
with torch.no_grad():
    y = model(x).argmax(1)
short = Evaluator(model, x[:4], y[:4], x[8:], y[8:], g)
long = Evaluator(model, x[4:8], y[4:8], x[8:], y[8:], g)
cfg = SearchConfig(length=24, batch=10000, s0_init=0.1, short_steps=20, short_images=4,
                   short_max_ratio=0.99, rerun_steps=40, rerun_images=4, rerun_top=2,
                   max_programs=40000)

def pause(state):
    if state["round"] == 2 and marker != "-" and not pathlib.Path(marker).exists():
        pathlib.Path(marker).touch()
        time.sleep(60)

state = search(cfg, short, long, seed=5, resume=Resume(pathlib.Path(state_dir), "k"),
               on_round=pause)
write_json(out, {"best": state["best"], "counts": state["counts"], "history": state["history"]})
"""


def test_search_resumes_after_sigkill_to_the_same_best_program(tmp_path):
    from reprise.io import read_json

    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cmd(name, marker="-"):
        return [
            sys.executable,
            str(script),
            str(tmp_path / f"{name}.json"),
            str(tmp_path / name),
            marker,
        ]

    whole = subprocess.Popen(cmd("whole"), env=env, stderr=subprocess.PIPE)
    marker = tmp_path / "marker"
    killed = subprocess.Popen(cmd("killed", str(marker)), env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not marker.exists():
        assert killed.poll() is None, killed.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.1)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    again = subprocess.run(cmd("killed", str(marker)), env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()
    assert b"resumed from" in again.stderr
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err.decode()
    a, b = read_json(tmp_path / "whole.json"), read_json(tmp_path / "killed.json")
    assert a == b
    assert a["counts"]["generated"] == 40000 and len(a["history"]) == 4
    assert a["best"]["nodes"] and a["best"]["long"] < 1  # it found a working program


# ---- metrics, bad input, the tiny DAG -------------------------------------------------------


def test_metrics_from_hand_made_searches_and_curves():
    import pandas as pd

    from reprise.papers.autoda import METRICS

    counts = {"generated": 1000, "inputs": 450, "distance": 540, "short": 6, "passed": 4}
    pruned = {"counts": counts, "queries": 500, "best": {"long": 0.3}, "history": []}
    random = {
        "counts": {**counts, "inputs": 0, "distance": 0},
        "queries": 900,
        "best": {"long": 0.1},  # reached only after the pruned search's 500 queries
        "history": [{"queries": 300, "best_ratio": 0.6}, {"queries": 900, "best_ratio": 0.1}],
    }
    rows = [
        ("normal", "autoda_found", 1.0),
        ("normal", "hsja", 2.0),
        ("normal", "autoda_1st", 0.5),
        ("pgd_at", "autoda_found", 3.0),
        ("pgd_at", "hsja", 2.0),
    ]
    curves = pd.DataFrame(
        [
            {"model": m, "method": k, "queries": 500, "median_l2": v, "success_rate": 0}
            for m, k, v in rows
        ]
    )
    got = METRICS.compute({"pruned": pruned, "random": random}, curves, {"claim_queries": 500})
    assert got["frac_fail_inputs"] == 0.45 and got["frac_fail_distance"] == 0.54
    assert got["frac_pass_checks"] == pytest.approx(0.01)
    assert got["frac_rejected_cheap"] == pytest.approx(0.99)
    assert got["random_best_ratio"] == 0.6 and got["found_vs_random"] == pytest.approx(0.5)
    assert got["found_vs_hsja_normal"] == 0.5 and got["found_vs_hsja_robust"] == 1.5
    assert got["autoda1st_vs_hsja_normal"] == 0.25 and got["autoda1st_vs_hsja_robust"] is None


def test_bad_search_config_is_one_clear_error():
    from reprise.errors import ConfigError
    from reprise.papers.autoda.search import SearchConfig

    with pytest.raises(ConfigError, match="unknown keys"):
        SearchConfig.from_config({"lenght": 24})
    with pytest.raises(ConfigError, match="must exceed"):
        SearchConfig.from_config({"length": 7})


TINY = {
    "models": {
        "search": {"arch": "small_cnn", "width": 0.25, "in_channels": 1, "classes": [3, 5]},
        "normal": {"arch": "small_cnn", "width": 0.25, "in_channels": 1},
    },
    "train": {"epochs": 4},
    "search": {"batch": 5000, "max_programs": 10000, "short_steps": 10, "rerun_steps": 20},
    "targets": ["normal"],
    "evaluation": {"images": 4, "budget": 60, "record": [30, 60], "grid": 30, "claim_queries": 60},
}


@pytest.mark.slow
def test_snakemake_builds_the_autoda_dag_end_to_end_at_tiny_size(project_copy):
    """`snakemake autoda report` in a copy of the project: 4 epochs, 10k programs, 60 queries."""
    import json

    out = build_tiny_paper(project_copy, "autoda", TINY)
    for name in ("search_progress", "pruning", "curves"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    assert "AutoDA 1st" in (out / "programs.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["programs_generated"] == 10000
    assert 0.3 < metrics["frac_fail_inputs"] < 0.6
    report = (project_copy / "results" / "smoke" / "REPORT.md").read_text()
    assert "**pruning-rejects-most-cheaply**" in report
