"""Kubernetes objects as plain data: how gen names one in its findings and notes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def ident(obj: Mapping[str, Any]) -> str:
    """`Kind/name` of an object (whatever it holds: it may come from a file a user wrote)."""
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"{obj.get('kind')}/{name}"
