"""Sizes the API server and etcd refuse, which no schema check catches, checked on built objects."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# The API server refuses a ConfigMap whose data and binaryData values hold more than 1 MiB
# together (the same bound as a Secret's).
CONFIG_MAP_DATA_MAX = 1024 * 1024
# etcd refuses a request over 1.5 MiB (its default --max-request-bytes): no object stored can be larger.
OBJECT_MAX = 1536 * 1024
# The API server refuses an object whose annotations (keys and values) hold more than 256 KiB.
ANNOTATIONS_MAX = 256 * 1024
# Client-side apply, Argo CD's default, stores the whole object in this annotation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The sync options under which Argo CD does not write LAST_APPLIED.
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
_NO_LAST_APPLIED = ("Replace=true", "ServerSideApply=true")


def json_bytes(value: Any) -> int:
    """Bytes of `value` as JSON the way kubectl's apply writes it into LAST_APPLIED (Go's encoding/json).

    Go writes text as UTF-8 like json.dumps(ensure_ascii=False), but writes <, > and & (one byte each)
    and U+2028 and U+2029 (three) as six-byte \\u escapes.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    html = sum(text.count(c) for c in "<>&")
    return len(text.encode("utf-8")) + 5 * html + 3 * (text.count("\u2028") + text.count("\u2029"))


def problems(obj: dict[str, Any]) -> list[str]:
    """Every size limit this object breaks, each with its numbers."""
    found = []
    if obj.get("kind") == "ConfigMap" and str(obj.get("apiVersion")) == "v1":
        # Bytes of its values as the API server counts them (binaryData decoded).
        size = sum(len(str(v).encode("utf-8")) for v in (obj.get("data") or {}).values())
        for value in (obj.get("binaryData") or {}).values():
            try:
                size += len(base64.b64decode(str(value), validate=True))
            except (binascii.Error, ValueError):
                size += len(str(value))  # the schema check reports it; count it as it is
        if size > CONFIG_MAP_DATA_MAX:
            found.append(
                f"data and binaryData hold {size} bytes; the API server refuses a ConfigMap over "
                f"{CONFIG_MAP_DATA_MAX} bytes (1 MiB)"
            )
    size = len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > OBJECT_MAX:
        found.append(f"the object is {size} bytes; etcd stores no object over {OBJECT_MAX} bytes (1.5 MiB)")
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    own = sum(len(str(k).encode("utf-8")) + len(str(v).encode("utf-8")) for k, v in annotations.items())
    if own > ANNOTATIONS_MAX:
        found.append(f"metadata.annotations hold {own} bytes; the API server refuses more than {ANNOTATIONS_MAX}")
    elif not found and not any(o in str(annotations.get(SYNC_OPTIONS, "")) for o in _NO_LAST_APPLIED):
        copied = json_bytes(obj)
        if own + len(LAST_APPLIED) + copied > ANNOTATIONS_MAX:
            found.append(
                f"the object is {copied} bytes: Argo CD's client-side apply copies it into the annotation "
                f"{LAST_APPLIED}, and annotations over {ANNOTATIONS_MAX} bytes are refused"
            )
    return found
