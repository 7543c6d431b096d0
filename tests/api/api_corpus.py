"""The corpora: tests/api/invalid (one manifest per refused rule) and tests/api/valid (what must be admitted).

Header keys (comment lines before the YAML): `Rule` (what the case checks), `Grove` (the Grove rule it mirrors,
by its place in ../shared/reference/grove-api.md), and for invalid cases `expect-field` (the field path the error
must name; `(policy)` for the ValidatingAdmissionPolicy, whose single cause has no field and names the path in
its message), `expect-message` (a substring of that error) and `expect-server: refuse`.
`NAME.old.yaml` next to `NAME.yaml` makes the case an update of that stored object.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CORPUS_DIR = Path(__file__).parent / "invalid"
VALID_DIR = Path(__file__).parent / "valid"
POLICY_FIELD = "(policy)"


@dataclass(frozen=True)
class Case:
    """One corpus manifest and what it must produce."""

    name: str
    path: Path
    rule: str
    grove: str
    field: str
    message: str
    server_refuses: bool
    old_path: Path | None

    @property
    def obj(self) -> dict[str, Any]:
        """The manifest."""
        data: dict[str, Any] = yaml.safe_load(self.path.read_text())
        return data

    @property
    def old(self) -> dict[str, Any] | None:
        """The stored object for update cases."""
        if self.old_path is None:
            return None
        data: dict[str, Any] = yaml.safe_load(self.old_path.read_text())
        return data


def _header(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line.lstrip("# ").partition(":")
        values[key.strip()] = value.strip()
    return values


def _load(directory: Path, valid: bool) -> list[Case]:
    cases = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name.endswith(".old.yaml"):
            continue
        header = _header(path)
        old = path.with_name(path.name[: -len(".yaml")] + ".old.yaml")
        field = header.get("expect-field", "")
        cases.append(
            Case(
                name=path.stem,
                path=path,
                rule=header["Rule"],
                grove=header["Grove"],
                field="" if field == POLICY_FIELD else field,
                message=header.get("expect-message", ""),
                server_refuses=not valid and header.get("expect-server", "refuse") == "refuse",
                old_path=old if old.exists() else None,
            )
        )
    return cases


def load_cases() -> list[Case]:
    """Every invalid case, sorted by name."""
    return _load(CORPUS_DIR, valid=False)


def load_valid_cases() -> list[Case]:
    """Every valid case (create, or update with NAME.old.yaml), sorted by name."""
    return _load(VALID_DIR, valid=True)
