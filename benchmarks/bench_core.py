"""Speed of the shared adversarial-ML core (a benchmark, never a test).

    pip install --no-deps torchattacks==3.5.1     # once; its PGD needs no torchvision
    python benchmarks/bench_core.py [--threads 1] [--batch 128] [--rounds 3]

1. PGD-10 (L∞, CE, random start) throughput of reprise against torchattacks 3.5.1, in one
   process, on the same model, batch and inputs (default memory layout for both).
2. reprise PGD-10 with channels_last against the default layout.
3. Achieved FLOP/s of PGD-10 and of a PGD-AT epoch (FLOPs counted once with
   torch.utils.flop_counter.FlopCounterMode) as a fraction of the machine's measured peak: a
   large fp32 matmul at the same thread count (bf16 on CUDA).
4. Training throughput of a standard and a PGD-AT epoch (reprise.training.fit) for the small
   CNN and the narrow ResNet-18, default layout and channels_last.

Timings alternate between the contenders round by round and report medians, so a noisy
shared machine affects both alike. CIFAR-shaped random inputs (3x32x32): throughput does not
depend on the pixel values. On a CUDA machine it also reports the bf16 + channels_last path.
torchattacks is a benchmark-only extra, installed with --no-deps: its declared requirements
(torchvision, requests~=2.25) would replace this project's torch and requests, and none of
them is imported by its PGD.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch

from reprise.attacks import PGD
from reprise.data.prepared import ImageData
from reprise.models import build_model
from reprise.resume import Resume
from reprise.runtime import Accel, pick_device, set_threads
from reprise.training import PGDAT, Monitor, Standard, TrainConfig, fit

MODELS = {"small_cnn": {"width": 1.0}, "resnet18": {"width": 0.25}}
ATTACK = PGD(eps=8 / 255, step_size=2 / 255, steps=10)


def race(contenders: dict, images: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) images/s of each zero-argument callable, alternating per round.

    CPU time (this process) is the steadier figure on a shared machine with one thread:
    other tenants' load stretches wall time but not the work done."""
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for f in contenders.values():  # warm-up (allocator, kernels)
        f()
    for _ in range(rounds):
        for name, f in contenders.items():
            t, c = time.perf_counter(), time.process_time()
            f()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return {
        name: (images / statistics.median(wall[name]), images / statistics.median(cpu[name]))
        for name in contenders
    }


def report(label: str, r: dict, ratios: dict[str, tuple[str, str]]) -> None:
    """One line of figures (wall | CPU images/s) and one of ratios (wall | CPU)."""
    for k, (w, c) in r.items():
        print(f"  {label:20s} {k:44s} {w:7.1f} | {c:7.1f}")
    for name, (a, b) in ratios.items():
        if a in r and b in r:
            print(f"  {'':20s} {name:44s} {r[a][0] / r[b][0]:5.2f}x | {r[a][1] / r[b][1]:5.2f}x")


def model_on(arch: str, accel: Accel):
    torch.manual_seed(0)
    return accel.model(build_model(arch, 10, **MODELS[arch]).eval())


def pgd_race(arch: str, batch: int, rounds: int, device) -> dict[str, float]:
    import torchattacks

    plain, cl = Accel(device), Accel(device, channels_last=True)
    m, m_cl = model_on(arch, plain), model_on(arch, cl)
    x, y = torch.rand(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,))
    y = y.to(device)
    kw = {"eps": ATTACK.eps, "alpha": ATTACK.step_size, "steps": ATTACK.steps}
    ta, ta_cl = torchattacks.PGD(m, **kw), torchattacks.PGD(m_cl, **kw)
    contenders = {
        "torchattacks": lambda: ta(x, y),
        "reprise": lambda: ATTACK(m, x, y),
        "torchattacks_cl": lambda: ta_cl(cl.batch(x), y),
        "reprise_cl": lambda: ATTACK(m_cl, cl.batch(x), y),
    }
    # accel.compile: the same channels_last model through torch.compile (inductor)
    comp = Accel(device, channels_last=True, compile=True)
    m_comp = model_on(arch, comp)
    contenders["reprise_cl_compiled"] = lambda: ATTACK(m_comp, cl.batch(x), y)
    if device.type == "cuda":
        fast = Accel(device, bf16=True, channels_last=True)

        def bf16():
            with fast.autocast():
                ATTACK(m_cl, cl.batch(x), y)

        contenders["reprise_bf16_cl"] = bf16
    return race(contenders, batch, rounds)


def train_epoch(arch: str, method: str, n: int, batch: int, accel: Accel):
    """A zero-argument callable: one fit epoch of a fresh model on n random images."""
    g = torch.Generator().manual_seed(0)
    data = ImageData(
        torch.rand(n, 3, 32, 32, generator=g),
        torch.randint(0, 10, (n,), generator=g),
        [str(c) for c in range(10)],
    )
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=0.01, monitor=Monitor(train_size=0))

    def run():
        m = build_model(arch, 10, **MODELS[arch])
        meth = Standard() if method == "standard" else PGDAT(ATTACK)
        # fit's epoch progress bar (stderr) would interleave with the figures
        with tempfile.TemporaryDirectory() as d, contextlib.redirect_stderr(io.StringIO()):
            fit(m, meth, data, cfg, resume=Resume(Path(d)), accel=accel)

    return run


def train_race(arch: str, method: str, n: int, batch: int, rounds: int, device):
    def epoch(accel):
        return train_epoch(arch, method, n, batch, accel)

    contenders = {
        "default": epoch(Accel(device)),
        "channels_last": epoch(Accel(device, channels_last=True)),
        "cl_compiled": epoch(Accel(device, channels_last=True, compile=True)),
    }
    if device.type == "cuda":
        contenders["bf16_cl"] = epoch(Accel(device, bf16=True, channels_last=True))
    return race(contenders, n, rounds)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadiest on a shared machine)"
    )
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per contender (median)")
    p.add_argument("--train-size", type=int, default=128, help="images per training epoch")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--only", choices=["pgd", "train", "flops"], help="run one of the parts")
    args = p.parse_args()
    set_threads(args.threads)
    device = pick_device(args.device)
    print(
        f"device={device} threads={torch.get_num_threads()} batch={args.batch} "
        f"rounds={args.rounds} torch={torch.__version__}\n"
    )
    if args.only in (None, "pgd"):
        pgd_part(args, device)
    if args.only in (None, "flops"):
        flops_part(args, device)
    if args.only in (None, "train"):
        train_part(args, device)


def pgd_part(args, device) -> None:
    print("PGD-10 (L∞ 8/255, step 2/255): images/s as wall | CPU time; _cl = channels_last")
    for arch in MODELS:
        r = pgd_race(arch, args.batch, args.rounds, device)
        report(
            arch,
            r,
            {
                "reprise/torchattacks (default layout)": ("reprise", "torchattacks"),
                "reprise/torchattacks (both channels_last)": ("reprise_cl", "torchattacks_cl"),
                "reprise channels_last/default": ("reprise_cl", "reprise"),
                "reprise as configured (auto)/torchattacks": ("reprise_cl", "torchattacks"),
                "reprise bf16+channels_last/fp32 default": ("reprise_bf16_cl", "reprise"),
                "compiled/torchattacks (both channels_last)": (
                    "reprise_cl_compiled",
                    "torchattacks_cl",
                ),
                "compiled/eager (channels_last)": ("reprise_cl_compiled", "reprise_cl"),
            },
        )


def peak_flops(device, n: int = 2048, reps: int = 5) -> float:
    """The machine's measured peak: median FLOP/s of an n x n matmul (fp32 CPU, bf16 CUDA)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.rand(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def counted_flops(f) -> int:
    """FLOPs (matmul/conv, forward and backward) of one call of f."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        f()
    return counter.get_total_flops()


def flops_part(args, device) -> None:
    """Achieved FLOP/s (counted FLOPs x median wall rate) as a fraction of the peak."""
    peak = peak_flops(device)
    fast = Accel(device, bf16=device.type == "cuda", channels_last=True)
    kind = "bf16+channels_last" if fast.bf16 else "fp32 channels_last"
    print(
        f"\nFLOP fraction ({kind}; peak = {peak / 1e9:.1f} GFLOP/s, "
        f"{'bf16' if fast.bf16 else 'fp32'} matmul 2048^3, {torch.get_num_threads()} threads)"
    )
    x = fast.batch(torch.rand(args.batch, 3, 32, 32))
    y = torch.randint(0, 10, (args.batch,), device=device)
    for arch in MODELS:
        m = model_on(arch, fast)

        def pgd(m=m):
            with fast.autocast():
                ATTACK(m, x, y)

        at = train_epoch(arch, "pgd_at", args.train_size, args.batch, fast)
        for name, f, images in (("PGD-10", pgd, args.batch), ("PGD-AT epoch", at, args.train_size)):
            flops = counted_flops(f)
            rate = race({name: f}, images, args.rounds)[name][0]  # images/s (wall)
            achieved = flops / images * rate
            print(
                f"  {arch:10s} {name:13s} {flops / images / 1e6:8.1f} MFLOP/image "
                f"{achieved / 1e9:7.2f} GFLOP/s = {achieved / peak:6.1%} of peak"
            )


def train_part(args, device) -> None:
    print("\ntraining epochs (reprise.training.fit): images/s as wall | CPU time")
    for arch in MODELS:
        for method in ("standard", "pgd_at"):
            r = train_race(arch, method, args.train_size, args.batch, args.rounds, device)
            report(
                f"{arch} {method}",
                r,
                {
                    "channels_last/default": ("channels_last", "default"),
                    "compiled/eager (channels_last)": ("cl_compiled", "channels_last"),
                    "bf16+channels_last/default": ("bf16_cl", "default"),
                },
            )


if __name__ == "__main__":
    main()
