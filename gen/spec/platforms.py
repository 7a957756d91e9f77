"""What each platform's nodes already hold: the objects the stack takes over and the host ports in use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from gen import yamlio

Role = Literal["control", "db", "every"]


@dataclass(frozen=True)
class HostPort:
    port: int
    owner: str
    role: Role  # the nodes that bind it: the control node, the database nodes, or every node
    # The stack object that replaces this port's owner in place: that object may bind it.
    taken_over_by: str | None = None


@cache
def host_facts() -> dict[str, Any]:
    """gen/resources/hosts.yaml: what each platform's nodes hold, and the system's host directories."""
    facts: dict[str, Any] = yamlio.parse_plain((resources.files("gen") / "resources" / "hosts.yaml").read_text())
    return facts


EASY_DB_LAB_OBJECTS = tuple((kind, name) for kind, name in host_facts()["easyDbLabObjects"])
PORTS = {
    platform: tuple(HostPort(p["port"], p["owner"], p["role"], p.get("takenOverBy")) for p in table)
    for platform, table in host_facts()["ports"].items()
}


def port_clash(platform: str, port: int, role: Role, user: str) -> HostPort | None:
    """The platform's use of a host port that `user` (a stack part) would bind on nodes of `role`, if any."""
    mine = (t for t in PORTS[platform] if t.port == port and t.taken_over_by != user)
    return next((t for t in mine if "every" in (t.role, role) or t.role == role), None)
