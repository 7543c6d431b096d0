"""`grove validate`: load YAML manifests and report, per document, what the API server and the operator say.

Output mimics kubectl's server-side messages (`The PodCliqueSet "x" is invalid:` followed by `* field: ...`)
so users see the same text offline as from `kubectl apply --dry-run=server`.
"""

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from grove.validation.errors import FieldError
from grove.validation.validator import Result, crd_index, validate_object


@dataclass
class Document:
    """One YAML document of a file."""

    source: str
    index: int
    obj: dict[str, Any]

    @property
    def ident(self) -> tuple[str, str, str]:
        """(kind, namespace, name): how --old documents are matched to new ones."""
        meta = self.obj.get("metadata") or {}
        return (str(self.obj.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name")))

    @property
    def label(self) -> str:
        """`Kind "name"` as kubectl names objects."""
        meta = self.obj.get("metadata") or {}
        return f'{self.obj.get("kind")} "{meta.get("name") or meta.get("generateName") or ""}"'


def load_documents(path: Path) -> list[Document]:
    """Every non-empty document of a YAML file (`-` reads stdin); `kind: List` is flattened."""
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    documents = []
    for i, obj in enumerate(yaml.safe_load_all(text)):
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: document {i} is not a mapping")
        items = obj.get("items") if obj.get("kind") == "List" else [obj]
        documents += [Document(str(path), i, item) for item in items or []]
    return documents


def is_grove_kind(obj: dict[str, Any]) -> bool:
    """Whether a document is one of our CRDs' kinds."""
    return (str(obj.get("apiVersion")), str(obj.get("kind"))) in crd_index()


def format_result(doc: Document, result: Result) -> list[str]:
    """Lines describing one document's verdict."""
    decode = [e for e in result.admission if e.origin == "decode"]
    lines: list[str] = []
    if decode:
        version = str(doc.obj.get("apiVersion", "")).rsplit("/", 1)[-1]
        unknown = ", ".join(e.message for e in decode)
        lines.append(
            f'{doc.source}: {doc.obj.get("kind")} in version "{version}" cannot be handled as a '
            f"{doc.obj.get('kind')}: strict decoding error: {unknown}"
        )
        return lines
    if result.admission:
        lines.append(f"{doc.source}: The {doc.label} is invalid: ")
        lines += [f"* {error}" for error in result.admission]
    if result.operator:
        lines.append(f"{doc.source}: The {doc.label} would be admitted, but the operator refuses it (SpecValid=False):")
        lines += [f"* {error}" for error in result.operator]
    return lines


def validate_documents(
    docs: Iterable[Document], old: dict[tuple[str, str, str], Document] | None = None
) -> list[tuple[Document, Result]]:
    """Validate grove documents (others are skipped); `old` makes matching documents updates."""
    results = []
    for doc in docs:
        if not is_grove_kind(doc.obj):
            continue
        previous = (old or {}).get(doc.ident)
        results.append((doc, validate_object(doc.obj, previous.obj if previous else None)))
    return results


def validate_files(files: list[Path], old: Path | None = None, out: TextIO = sys.stdout, quiet: bool = False) -> int:
    """The `grove validate` command: 0 when every grove document is valid, 1 otherwise."""
    old_docs = {doc.ident: doc for doc in load_documents(old)} if old else None
    invalid = False
    for path in files:
        try:
            docs = load_documents(path)
        except (OSError, ValueError, yaml.YAMLError) as error:
            print(f"{path}: cannot read: {error}", file=out)
            invalid = True
            continue
        for doc, result in validate_documents(docs, old_docs):
            lines = format_result(doc, result)
            if lines:
                invalid = True
                print("\n".join(lines), file=out)
            elif not quiet:
                verb = "valid update" if old_docs and doc.ident in old_docs else "valid"
                print(f"{doc.source}: {doc.label} is {verb}", file=out)
    return 1 if invalid else 0


def errors_of(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """All errors for one object (convenience for tests and the operator)."""
    return validate_object(obj, old).errors
