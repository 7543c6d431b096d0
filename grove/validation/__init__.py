"""Validation of grove.io objects without a webhook: the CRD's schema and CEL rules evaluated offline, plus
the few rules only Python can check (`grove.validation.rules`)."""

from grove.validation.errors import FieldError
from grove.validation.rules import validate_podcliqueset

__all__ = ["FieldError", "validate_podcliqueset"]
