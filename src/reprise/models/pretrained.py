"""Published ImageNet weights for the bottleneck ResNets, from a file the user provides.

    model = build_model("resnet50", 1000, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    load_torchvision(model, "resnet50-0676ba61.pth")   # ResNet50_Weights.IMAGENET1K_V1

The file is torchvision's state dict (a plain dict of tensors, read weights-only as untrusted
input). Its names are this model's, except the classifier: torchvision's `fc` is `head`.
The normalisation buffers are not in the file: torchvision normalises outside the model,
with the ImageNet statistics below, which the config passes as the model's mean/std.
Nothing is loaded unless every tensor of the model is in the file with its shape (BatchNorm's
step counters may be absent).
"""

from __future__ import annotations

from pathlib import Path

from reprise.errors import CheckpointError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's IMAGENET1K_V1 files (the sha256 prefix is in the name)
KNOWN = {"resnet50": "resnet50-0676ba61.pth", "resnet152": "resnet152-394f9c45.pth"}
OWN = ("mean", "std")  # the model's buffers that the file does not hold
OPTIONAL = "num_batches_tracked"  # BatchNorm's counter: absent from files saved before it existed


def torchvision_names(state: dict) -> dict:
    """torchvision's keys -> this project's (fc.* -> head.*)."""
    return {("head" + k[2:] if k.startswith("fc.") else k): v for k, v in state.items()}


def load_torchvision(model, path: str | Path) -> None:
    """Copy the weights in torchvision's file `path` into `model` (same architecture)."""
    import torch

    from reprise.io import load_checkpoint

    path = Path(path)
    expected = f"torchvision's ImageNet weights for this architecture (e.g. {KNOWN['resnet50']})"
    state = load_checkpoint(path, what="pre-trained weights file")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors: expected {expected}")
    state = torchvision_names(state)
    want = {k: v for k, v in model.state_dict().items() if k not in OWN}
    missing = sorted(k for k in want.keys() - state.keys() if not k.endswith(OPTIONAL))
    extra = sorted(state.keys() - want.keys())
    wrong = sorted(k for k in want.keys() & state.keys() if state[k].shape != want[k].shape)
    problems = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("of another shape", wrong)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{len(keys)} tensors {label} ({', '.join(keys[:3])}{more})")
    if problems:
        raise CheckpointError(
            f"{path} does not fit {type(model).__name__} "
            f"({getattr(model, 'spec', {}).get('arch', '?')}, {model.head.out_features} "
            f"classes): {'; '.join(problems)}; expected {expected}"
        )
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k in state:
                v.copy_(state[k])
