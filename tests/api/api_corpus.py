"""The bad-input corpus (tests/api/invalid): one manifest per rule, expectations in its header comment.

Header keys: `expect-field` (the field path the error must name), `expect-message` (a substring of that error),
`expect-server` (`refuse`, or `accept` for Python-only rules the operator enforces after admission).
`NAME.old.yaml` next to `NAME.yaml` makes the case an update of that stored object.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CORPUS_DIR = Path(__file__).parent / "invalid"


@dataclass(frozen=True)
class Case:
    """One corpus manifest and what it must produce."""

    name: str
    path: Path
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


def load_cases() -> list[Case]:
    """Every case of the corpus, sorted by name."""
    cases = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        if path.name.endswith(".old.yaml"):
            continue
        header = _header(path)
        old = path.with_name(path.name[: -len(".yaml")] + ".old.yaml")
        cases.append(
            Case(
                name=path.stem,
                path=path,
                field=header["expect-field"],
                message=header["expect-message"],
                server_refuses=header.get("expect-server", "refuse") == "refuse",
                old_path=old if old.exists() else None,
            )
        )
    return cases
