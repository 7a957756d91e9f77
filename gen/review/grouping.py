"""Clusters whose built manifests change the same way, up to their own name, address and namespace, as one section."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gen.render.layout import CHECKSUM_ANNOTATION
from gen.review.diffing import FieldChange
from gen.review.provenance import whole_token

if TYPE_CHECKING:
    from gen.commands.diff import Section

# Two like sections read as fast as a group's header and list of clusters; from three on, the group is shorter.
GROUP_MIN = 3


def signature(section: Section, own: Iterable[str]) -> str:
    """The section's changes as text, the cluster's own name, address and namespace (`own`, whole tokens) made alike."""
    changes = [
        [c.key.label(), c.key.api_version, c.status, c.source, c.impact, c.new if c.status == "added" else None]
        + [_field(f) for f in c.fields]
        for c in section.comparison.changes
    ]
    text = json.dumps([section.impact, changes], sort_keys=True, default=repr)
    for token in sorted(own, key=len, reverse=True):  # an address may hold the name (lab-1.example.org)
        text = whole_token(token).sub("\0", text)
    return text


def _field(f: FieldChange) -> list[Any]:
    if f.path[-1:] == (CHECKSUM_ANNOTATION,):
        return [f.path_text(), f.source]  # a digest of the config, which differs with every cluster's
    # A long text compares by its changed lines: its context holds whatever else differs between clusters.
    values = (f.side_text("-"), f.side_text("+")) if f.multiline else (f.old, f.new)
    return [f.path_text(), f.source, *values]


def grouped(sections: list[Section]) -> list[Section]:
    """Every GROUP_MIN or more changed clusters of one signature as one section (scope "group"), then the others."""
    alike: dict[str, list[Section]] = {}
    for section in sections:
        if section.alike is not None:
            alike.setdefault(section.alike, []).append(section)
    groups = [members for members in alike.values() if len(members) >= GROUP_MIN]
    inside = {id(s) for members in groups for s in members}
    return [
        replace(m[0], name=f"group {i}", scope="group", clusters=[s.name for s in m], source=_sources(m[0]))
        for i, m in enumerate(groups, 1)
    ] + [s for s in sections if id(s) not in inside]


def _sources(section: Section) -> str | None:
    """Where the changes come from (a defaults line), each once."""
    found = [x for c in section.comparison.changes for x in (c.source, *(f.source for f in c.fields)) if x]
    return ", ".join(dict.fromkeys(part for x in found for part in x.split(", "))) or None
