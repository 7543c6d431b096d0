"""Known GPU models for the simulated backend (and the fake NVML in tests).

Numbers are taken from ``nvidia-smi -q`` / ``nvidia-smi mig -lgip`` listings of the real parts,
rounded where listings vary by driver; they only need to be realistic enough for scheduling tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grove.dra.devices import MigProfile


@dataclass(frozen=True)
class MigPlacementRule:
    """Where a profile may start (in memory-slice units) on its parent GPU."""

    profile: MigProfile
    starts: tuple[int, ...]


@dataclass(frozen=True)
class GpuModel:
    product_name: str
    architecture: str
    cuda_compute_capability: str
    memory_mib: int
    brand: str = "Nvidia"
    mig: dict[str, MigPlacementRule] = field(default_factory=dict)


def _p(name: str, pid: int, mem: int, sm: int, ce: int, dec: int, enc: int, jpg: int, ofa: int, size: int,
       starts: tuple[int, ...]) -> tuple[str, MigPlacementRule]:
    return name, MigPlacementRule(MigProfile(name, pid, mem, sm, ce, dec, enc, jpg, ofa, size), starts)


H100_MIG = dict([
    _p("1g.10gb", 19, 9984, 16, 1, 1, 0, 1, 0, 1, (0, 1, 2, 3, 4, 5, 6)),
    _p("1g.10gb+me", 20, 9984, 16, 1, 1, 1, 1, 1, 1, (0, 1, 2, 3, 4, 5, 6)),
    _p("1g.20gb", 15, 20096, 26, 1, 1, 0, 1, 0, 2, (0, 2, 4, 6)),
    _p("2g.20gb", 14, 20096, 32, 2, 2, 0, 2, 0, 2, (0, 2, 4)),
    _p("3g.40gb", 9, 40448, 60, 3, 3, 0, 3, 0, 4, (0, 4)),
    _p("4g.40gb", 5, 40448, 64, 4, 4, 0, 4, 0, 4, (0,)),
    _p("7g.80gb", 0, 81152, 132, 8, 7, 0, 7, 1, 8, (0,)),
])

A100_40GB_MIG = dict([
    _p("1g.5gb", 19, 4864, 14, 1, 0, 0, 0, 0, 1, (0, 1, 2, 3, 4, 5, 6)),
    _p("2g.10gb", 14, 9856, 28, 2, 1, 0, 0, 0, 2, (0, 2, 4)),
    _p("3g.20gb", 9, 19968, 42, 3, 2, 0, 0, 0, 4, (0, 4)),
    _p("4g.20gb", 5, 19968, 56, 4, 2, 0, 0, 0, 4, (0,)),
    _p("7g.40gb", 0, 40192, 98, 7, 5, 0, 1, 1, 8, (0,)),
])

MODELS: dict[str, GpuModel] = {
    "H100-80GB": GpuModel("NVIDIA H100 80GB HBM3", "Hopper", "9.0", 81559, mig=H100_MIG),
    "A100-40GB": GpuModel("NVIDIA A100-SXM4-40GB", "Ampere", "8.0", 40960, mig=A100_40GB_MIG),
    "L4": GpuModel("NVIDIA L4", "Ada Lovelace", "8.9", 23034),
    # pre-Volta: no MPS multi-user mode (the check both backends apply; issue 14)
    "P4": GpuModel("Tesla P4", "Pascal", "6.1", 7680, brand="Tesla"),
}


def place(model: GpuModel, profiles: list[str]) -> list[tuple[MigProfile, int]]:
    """Placements (in layout order) for a static MIG layout, by backtracking over allowed starts.

    First-fit alone rejects valid layouts (3g+2g+1g+1g on H100 needs the 3g at slice 4).
    Raises ValueError if the layout can't fit on one GPU.
    """
    rules = []
    for name in profiles:
        rule = model.mig.get(name)
        if rule is None:
            raise ValueError(f"{model.product_name} has no MIG profile {name!r} (known: {', '.join(model.mig)})")
        rules.append(rule)

    def search(i: int, used: frozenset[int]) -> list[int] | None:
        if i == len(rules):
            return []
        size = rules[i].profile.slice_count
        for start in rules[i].starts:
            span = frozenset(range(start, start + size))
            if not span & used:
                rest = search(i + 1, used | span)
                if rest is not None:
                    return [start, *rest]
        return None

    starts = search(0, frozenset())
    if starts is None:
        raise ValueError(f"MIG layout {profiles} does not fit on {model.product_name}")
    return [(r.profile, s) for r, s in zip(rules, starts, strict=True)]
