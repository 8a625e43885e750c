"""Repair of a compressed network towards the original, driven by verified discrepancy bounds.

* :mod:`.driver` — the loop (verify → targets → train → re-verify), logs and resume, certification
  of δ_max on boxes; the only module that sees both the verifier and torch.
* :mod:`.targets` — target strategies (``paper``, ``witness``, ``distill``) and the target set 𝒪
  (numpy only).
* :mod:`.train` — constrained retraining in torch: same grid, same masks, same widths.
* :mod:`.boxes` — repair/evaluation boxes (the seed paper's preset, L-inf balls) and folding of
  fixed inputs.
* :mod:`.report` — JSON and plots.

Names are loaded lazily so that ``import equivrepair.repair`` needs neither torch nor the verifier.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "repair": "driver",
    "sweep": "driver",
    "verify_boxes": "driver",
    "certify_boxes": "driver",
    "load_compressed": "driver",
    "load_checkpoint": "driver",
    "RepairConfig": "driver",
    "RepairData": "driver",
    "RepairResult": "driver",
    "VerifyConfig": "driver",
    "BoxBounds": "targets",
    "TargetSet": "targets",
    "Targets": "targets",
    "make_targets": "targets",
    "STRATEGIES": "targets",
    "Constraint": "train",
    "TrainConfig": "train",
    "train_constrained": "train",
    "paper_boxes": "boxes",
    "linf_boxes": "boxes",
    "pixel_boxes": "boxes",
    "fold_pair": "driver",
    "boxes_from_spec": "boxes",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
