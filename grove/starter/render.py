"""Render a starter PodCliqueSet from the jinja2 templates shipped in `templates/` (issue #10).

The templates only lay out YAML; what is valid is decided by `grove.validation`, and `render` refuses to return
a document that does not validate, so a template mistake can never reach a user's cluster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import jinja2
import yaml

from grove.validation.validator import validate_object

LAYOUTS = ("agg", "disagg-single", "disagg-multinode")
DEFAULT_IMAGE = "registry.k8s.io/pause:3.10"  # a placeholder that runs anywhere: replace with your server


@dataclass(frozen=True)
class Starter:
    """What `grove init` asks for. `workers`: pods per clique (agg, disagg-single) or workers per leader
    (disagg-multinode); `units`: leader+worker units per scaling group (disagg-multinode)."""

    layout: str
    name: str = "inference"
    replicas: int = 1
    workers: int = 2
    units: int = 1
    image: str = DEFAULT_IMAGE
    frontend_image: str = DEFAULT_IMAGE
    model: str = "Qwen/Qwen3-0.6B"
    gpus: int = 0
    mig: str | None = None
    compute_domain: bool = False
    sandbox: bool = False


class StarterError(ValueError):
    """A starter that cannot be rendered (bad flags, or a document that fails validation)."""


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("grove.starter", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,  # YAML, not HTML; values are checked below and the result is validated
)


def _check(starter: Starter) -> None:
    if starter.layout not in LAYOUTS:
        raise StarterError(f"--layout: {starter.layout!r} is not one of {', '.join(LAYOUTS)}")
    for field in ("replicas", "workers", "units"):
        if getattr(starter, field) < 1:
            raise StarterError(f"--{field}: must be at least 1")
    if starter.gpus < 0:
        raise StarterError("--gpus: must not be negative")
    if starter.gpus and starter.mig:
        raise StarterError("--mig: a pod gets either whole GPUs (--gpus) or a MIG slice (--mig), not both")
    if starter.compute_domain and not starter.gpus:
        raise StarterError("--compute-domain: needs --gpus (a ComputeDomain joins pods that hold whole GPUs)")


def render(starter: Starter) -> str:
    """The PodCliqueSet YAML for `starter`; raises StarterError if the flags or the result are invalid."""
    _check(starter)
    text = _ENV.get_template(f"{starter.layout}.yaml.j2").render(**asdict(starter))
    try:
        obj: dict[str, Any] = yaml.safe_load(text)
    except yaml.YAMLError as error:  # a flag value that breaks the YAML (e.g. a quote in --image)
        raise StarterError(f"the {starter.layout} starter is not valid YAML with these flags: {error}") from None
    result = validate_object(obj)
    if not result.valid:
        problems = "; ".join(f"{e.field}: {e.message}" for e in result.errors)
        raise StarterError(f"the {starter.layout} starter does not validate: {problems}")
    return text
