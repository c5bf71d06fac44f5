"""AutoDA's search space: straight-line programs over scalar and vector math.

A program is a list of nodes; node i is (op, a, b) with operands a, b < i. The first nodes
are fixed:

    0 s0      the step scalar (tuned online by the attack)
    1 x       the original image (flattened)
    2 x_adv   the current adversarial image
    3 noise   a standard normal vector, fresh at every step
    4 d     = x - x_adv            } the three predefined nodes of the paper
    5 |d|   = norm(d)              }
    6 u     = d / |d|              }

then `length - 7` random nodes; the last node is a vector, the proposal for the next x_adv.
`run_numpy` is the plain reference interpreter; `run_torch` evaluates P programs of the
same length on B cases at once (programs × images batched), skipping dead nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# op: (name, input types, output type); "s" scalar, "v" vector
OPS = (
    ("ADD", "ss", "s"),
    ("SUB", "ss", "s"),
    ("MUL", "ss", "s"),
    ("DIV", "ss", "s"),
    ("ADD", "vv", "v"),
    ("SUB", "vv", "v"),
    ("MUL", "vs", "v"),
    ("DIV", "vs", "v"),
    ("DOT", "vv", "s"),
    ("NORM", "v", "s"),
)
SS_ADD, SS_SUB, SS_MUL, SS_DIV, VV_ADD, VV_SUB, VS_MUL, VS_DIV, VV_DOT, V_NORM = range(10)
INPUT = -1  # op code of the four input nodes
INPUTS = ("s0", "x", "x_adv", "noise")
INPUT_TYPES = "svvv"
PREDEFINED = ((VV_SUB, 1, 2), (V_NORM, 4, 4), (VS_DIV, 4, 5))
FIXED = len(INPUTS) + len(PREDEFINED)  # nodes every program starts with
ALL_INPUTS = 0b1111  # bit k: the value depends on input k
VECTOR_OPS = tuple(k for k, op in enumerate(OPS) if op[2] == "v")


@dataclass(frozen=True)
class Program:
    """Nodes after the fixed ones: a tuple of (op, a, b) (b unused by NORM, kept = a)."""

    nodes: tuple[tuple[int, int, int], ...]

    @property
    def full(self) -> tuple[tuple[int, int, int], ...]:
        return tuple((INPUT, i, i) for i in range(len(INPUTS))) + PREDEFINED + self.nodes

    def __len__(self) -> int:
        return FIXED + len(self.nodes)

    def types(self) -> str:
        return INPUT_TYPES + "".join(OPS[op][2] for op, _, _ in PREDEFINED + self.nodes)

    def live(self) -> np.ndarray:
        """Which nodes the output depends on (the rest is dead code)."""
        return live_mask(np.array([self.full]))[0]

    def text(self) -> str:
        """Readable three-address code of the live nodes, e.g. `v7 = ADD(v2, v6)`."""
        names = {i: n for i, n in enumerate(INPUTS)}
        names |= {4: "d", 5: "|d|", 6: "u"}
        types, lines = self.types(), []
        for i, (op, a, b) in enumerate(self.full):
            if i < FIXED or not self.live()[i]:
                continue
            name = f"{types[i]}{i}"
            args = names[a] if OPS[op][1] == "v" else f"{names[a]}, {names[b]}"
            lines.append(f"{name} = {OPS[op][0]}({args})")
            names[i] = name
        lines.append(f"return {names[len(self) - 1]}")
        return "\n".join(lines)

    def as_list(self) -> list[list[int]]:
        return [list(n) for n in self.nodes]

    @classmethod
    def from_code(cls, code: np.ndarray) -> Program:
        return cls.from_list(code[FIXED:])

    @classmethod
    def from_list(cls, nodes) -> Program:
        return cls(tuple((int(o), int(a), int(b)) for o, a, b in nodes))


def inputs_check(program: Program) -> bool:
    """Pruning stage 1 (symbolic): the output must depend on s0, x, x_adv and the noise."""
    return bool(inputs_ok(np.array([program.full]))[0])


def random_code(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """`n` random programs of `length` nodes as an int array n × length × 3 (fixed nodes
    included), with the official search's prior: ops uniform (the last one among vector
    ops); of a node's operands, 0..all (uniform count) are drawn from nodes not used yet
    (so few nodes end up dead), the rest from all earlier nodes of the right type."""
    code = np.zeros((n, length, 3), np.int64)
    code[:, :FIXED] = Program(()).full
    is_vec = np.zeros((n, length), bool)
    is_vec[:, :FIXED] = [t == "v" for t in Program(()).types()]
    unused = np.zeros((n, length), bool)
    unused[:, [0, 3]] = True  # s0 and the noise: the inputs no predefined node consumes
    arity = np.array([len(op[1]) for op in OPS])
    first_vec = np.array([op[1][0] == "v" for op in OPS])
    second_vec = np.array([op[1][-1] == "v" for op in OPS])
    out_vec = np.array([op[2] == "v" for op in OPS])
    rows = np.arange(n)
    for i in range(FIXED, length):
        ops = rng.integers(0, len(OPS), n)
        if i == length - 1:
            ops = np.array(VECTOR_OPS)[rng.integers(0, len(VECTOR_OPS), n)]
        k = arity[ops]
        n_unused = rng.integers(0, k + 1)
        one = rng.integers(0, k)  # which operand prefers an unused node when just one does
        prefer = np.stack(
            [
                (n_unused == k) | ((n_unused == 1) & (one == 0)),
                (n_unused == k) | ((n_unused == 1) & (one == 1)),
            ],
            1,
        )
        for slot, want_vec in ((0, first_vec[ops]), (1, second_vec[ops])):
            typed = is_vec[:, :i] == want_vec[:, None]
            pick_unused = prefer[:, slot] & (unused[:, :i] & typed).any(1)
            pool = np.where(pick_unused[:, None], unused[:, :i] & typed, typed)
            j = np.argmax(np.where(pool, rng.random((n, i)), -1.0), 1)
            unused[rows, j] = False
            code[:, i, 1 + slot] = j
        code[:, i, 0] = ops
        code[k == 1, i, 2] = code[k == 1, i, 1]
        is_vec[:, i] = out_vec[ops]
        unused[:, i] = True
    return code


def random_program(rng: np.random.Generator, length: int) -> Program:
    return Program.from_code(random_code(rng, 1, length)[0])


def inputs_ok(code: np.ndarray) -> np.ndarray:
    """Pruning stage 1 for many programs (n × L × 3): does the output depend on all inputs?"""
    n, L, _ = code.shape
    deps = np.zeros((n, L), np.int64)
    rows = np.arange(n)
    for i in range(L):
        if i < len(INPUTS):
            deps[:, i] = 1 << i
        else:
            deps[:, i] = deps[rows, code[:, i, 1]] | deps[rows, code[:, i, 2]]
    return deps[:, -1] == ALL_INPUTS


def live_mask(code: np.ndarray) -> np.ndarray:
    """n × L: which nodes each program's output depends on."""
    n, L, _ = code.shape
    live = np.zeros((n, L), bool)
    live[:, -1] = True
    rows = np.arange(n)
    for i in range(L - 1, len(INPUTS) - 1, -1):
        on = live[:, i]
        live[rows[on], code[on, i, 1]] = True
        live[rows[on], code[on, i, 2]] = True
    return live


# AutoDA 1st, the program the official code evaluates as `autoda_0`: with n = s0 * noise,
# proposal = x_adv + d * <u + n, n> - |d| * n.
AUTODA_1ST = Program(
    (
        (VS_MUL, 3, 0),  # 7  n = noise * s0
        (VS_MUL, 7, 5),  # 8  n * |d|
        (VV_ADD, 7, 6),  # 9  n + u
        (VV_DOT, 9, 7),  # 10 <u + n, n>
        (VS_MUL, 4, 10),  # 11 d * <u + n, n>
        (VV_ADD, 11, 2),  # 12 + x_adv
        (VV_SUB, 12, 8),  # 13 - |d| n
    )
)


def _apply(op, a, b, dot, norm):
    if op in (SS_ADD, VV_ADD):
        return a + b
    if op in (SS_SUB, VV_SUB):
        return a - b
    if op in (SS_MUL, VS_MUL):
        return a * b
    if op in (SS_DIV, VS_DIV):
        return a / b
    return dot(a, b) if op == VV_DOT else norm(a)


def run_numpy(program: Program, s0: float, x, x_adv, noise) -> np.ndarray:
    """Reference interpreter: one program on one case (vectors of shape D)."""
    vals: list = [np.float64(s0), x, x_adv, noise]
    with np.errstate(all="ignore"):
        for op, a, b in program.full[len(INPUTS) :]:
            vals.append(_apply(op, vals[a], vals[b], np.dot, np.linalg.norm))
    return vals[-1]


def stack(programs: list[Program]) -> np.ndarray:
    """P programs as an int array P × L × 3 (fixed nodes included). Shorter programs get
    dead filler nodes (x + x, used by nothing) inserted after the fixed nodes."""
    L = max(len(p) for p in programs)
    rows = []
    for p in programs:
        pad = L - len(p)
        moved = [(op, _shift(a, pad), _shift(b, pad)) for op, a, b in p.nodes]
        rows.append(Program(((VV_ADD, 1, 1),) * pad + tuple(moved)).full)
    return np.array(rows, dtype=np.int64)


def _shift(j: int, pad: int) -> int:
    return j + pad if j >= FIXED else j


def compile_plan(code: np.ndarray, live: np.ndarray, device=None) -> list:
    """The work `run_plan` does for P programs (`code` P × L × 3, `live` P × L), grouped
    once: for each node, the live programs of each op with their operand indices."""
    import torch

    plan = []
    for i in range(len(INPUTS), code.shape[1]):
        ops, groups = code[:, i, 0], []
        for op in np.unique(ops[live[:, i]]):
            rows = np.flatnonzero((ops == op) & live[:, i])
            t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
            groups.append((int(op), t(rows), t(code[rows, i, 1]), t(code[rows, i, 2])))
        plan.append(groups)
    return plan


def run_plan(plan: list, s0, x, x_adv, noise):
    """Run a compiled batch of P programs on B cases: s0 P × B, x / x_adv / noise
    P × B × D. Returns the outputs, P × B × D."""
    import torch

    P, L = x.shape[0], len(INPUTS) + len(plan)
    vec = x.new_zeros((P, L, *x.shape[1:]))
    sca = x.new_zeros((P, L, x.shape[1]))
    sca[:, 0], vec[:, 1], vec[:, 2], vec[:, 3] = s0, x, x_adv, noise
    dot = lambda u, w: (u * w).sum(-1)  # noqa: E731
    norm = lambda u: torch.linalg.vector_norm(u, dim=-1)  # noqa: E731
    for i, groups in enumerate(plan, start=len(INPUTS)):
        for op, rows, a, b in groups:
            ta, tb, to = OPS[op][1][0], OPS[op][1][-1], OPS[op][2]
            va = (vec if ta == "v" else sca)[rows, a]
            vb = (vec if tb == "v" else sca)[rows, b]
            if ta == "v" and tb == "s":
                vb = vb[..., None]
            (vec if to == "v" else sca)[rows, i] = _apply(op, va, vb, dot, norm)
    return vec[:, -1]


def run_torch(code: np.ndarray, live: np.ndarray, s0, x, x_adv, noise):
    """Run P programs (`code` P × L × 3 from `stack`, `live` P × L) on B cases at once."""
    return run_plan(compile_plan(code, live, x.device), s0, x, x_adv, noise)
