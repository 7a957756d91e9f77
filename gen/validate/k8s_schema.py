"""Strict schema validation of core Kubernetes objects, with kubernetes-validate's schemas."""

from __future__ import annotations

import functools
import re
from typing import Any


@functools.cache
def _definitions(schema_dir: str) -> Any:
    from kubernetes_validate.utils import schema_contents

    return schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir)


# kubernetes-validate's own `validate()` rebuilds its registry for every object (about 15 ms);
# a fleet validates thousands, so a validator is built once per kind from the same schema files.
@functools.cache
def _validator(version: str, api_version: str, kind: str) -> Any:
    import jsonschema
    from kubernetes_validate.utils import all_versions, major_minor, schema_contents
    from referencing import Registry, Resource

    # The schemas of the newest version that is not newer than the one asked for.
    chosen = [v for v in all_versions() if major_minor(v) <= major_minor(version)][-1]
    schema_dir = f"v{chosen}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version)
    registry = [Resource.from_contents(schema), Resource.from_contents(_definitions(schema_dir))] @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any], version: str) -> list[str]:
    """Every schema violation of one object, as `field.path: message` (empty when valid)."""
    try:
        validator = _validator(version, str(obj.get("apiVersion")), str(obj.get("kind")))
    except FileNotFoundError:
        return [f"no schema for {obj.get('apiVersion')} {obj.get('kind')} in Kubernetes {version}"]
    found = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in error.absolute_path)
        found.append(f"{where + ': ' if where else ''}{error.message}")
    return found
