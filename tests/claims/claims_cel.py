"""A small stand-in for the Kubernetes DRA CEL environment, to evaluate generated selectors in unit tests.

cel-python evaluates the CEL; the Kubernetes extensions our selectors use are added as functions:
`quantity("40Gi")` and `semver("9.0.0")`, and the method `x.compareTo(y)` (cel-python calls a method as a
function with the receiver first). Devices are given in ResourceSlice form (`attributes: {name: {string|int|
version|bool: v}}`, `capacity: {name: {value: q}}`); unqualified names live in the driver's domain.
The real check is the integration suite, where kube-apiserver compiles and kube-scheduler runs them.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import celpy
from celpy import celtypes

_SUFFIX = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9,
           "T": 10**12, "m": Decimal("0.001")}


class Quantity(celtypes.IntType):
    """A quantity as an integer number of base units (good enough for memory sizes)."""


class Version(celtypes.StringType):
    def key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in str(self).split("."))


def parse_quantity(text: str) -> Quantity:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, text
    return Quantity(int(Decimal(match.group(1)) * _SUFFIX[match.group(2)]))


def _compare(a: Any, b: Any) -> celtypes.IntType:
    if isinstance(a, Version) and isinstance(b, Version):
        ka, kb = a.key(), b.key()
    else:
        ka, kb = int(a), int(b)
    return celtypes.IntType((ka > kb) - (ka < kb))


FUNCTIONS = {
    "quantity": lambda s: parse_quantity(str(s)),
    "semver": lambda s: Version(str(s)),
    "compareTo": _compare,
}


def _value(attr: dict[str, Any]) -> Any:
    if "version" in attr:
        return Version(attr["version"])
    if "string" in attr:
        return celtypes.StringType(attr["string"])
    if "int" in attr:
        return celtypes.IntType(attr["int"])
    return celtypes.BoolType(attr["bool"])


def device_activation(driver: str, device: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, dict[str, Any]] = {}
    for name, value in (device.get("attributes") or {}).items():
        domain, _, short = name.rpartition("/") if "/" in name else (driver, "", name)
        attrs.setdefault(domain, {})[short] = _value(value)
    caps: dict[str, dict[str, Any]] = {}
    for name, value in (device.get("capacity") or {}).items():
        domain, _, short = name.rpartition("/") if "/" in name else (driver, "", name)
        caps.setdefault(domain, {})[short] = parse_quantity(value["value"])
    to_map = celtypes.MapType
    return {
        "device": to_map({
            celtypes.StringType("driver"): celtypes.StringType(driver),
            celtypes.StringType("attributes"): to_map(
                {celtypes.StringType(d): to_map({celtypes.StringType(k): v for k, v in a.items()})
                 for d, a in attrs.items()}),
            celtypes.StringType("capacity"): to_map(
                {celtypes.StringType(d): to_map({celtypes.StringType(k): v for k, v in a.items()})
                 for d, a in caps.items()}),
        })
    }


def matches(expression: str, driver: str, device: dict[str, Any]) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression), functions=FUNCTIONS)
    return bool(program.evaluate(device_activation(driver, device)))


def request_matches(request: dict[str, Any], driver: str, device: dict[str, Any]) -> bool:
    """All selectors of an `exactly` request accept the device (the class selector is not evaluated)."""
    exprs = [s["cel"]["expression"] for s in request["exactly"].get("selectors") or []]
    return all(matches(e, driver, device) for e in exprs)
