"""The host paths a spec may name: the system directories (in gen/resources/hosts.yaml) kept out of the stack."""

from __future__ import annotations

import posixpath

from gen.spec.platforms import host_facts

_FACTS = host_facts()
SYSTEM_TREES = frozenset(_FACTS["systemTrees"])
OPEN_DIRS = frozenset(_FACTS["openDirs"])
# Every parent of one of these is one too (a test keeps it so), so "not a system directory"
# also means "not a parent of one".
SYSTEM_DIRS = SYSTEM_TREES.union(_FACTS["sharedDirs"], _FACTS["knownSystemDirs"])

ENV_FILE_DIRS = frozenset(_FACTS["envFileDirs"])
ENV_FILE_PREFIX = "cassandra"
INCLUDE_FILE_NAME = "cassandra.in.sh"


def system_tree(path: str) -> str | None:
    """The system tree that holds `path` (or is it), unless an open directory lies in between."""
    at = path
    while at not in SYSTEM_TREES:
        if at == "/" or (at in OPEN_DIRS and at != path):
            return None
        at = posixpath.dirname(at)
    return at


def dedicated_dir_problem(path: str, example: str) -> str | None:
    """Why `path` cannot be a directory of the stack's own (a data or install directory), or None."""
    advice = f"give a directory of the stack's own (e.g. {example})"
    if path == "/":
        return f"must not be '/'; {advice}"
    if path in SYSTEM_DIRS:
        return f"{path} is a system directory; {advice}"
    if (tree := system_tree(path)) is not None:
        return f"{path} lies inside {tree}, which belongs to the system; {advice}"
    if path.count("/") < 2:
        return f"must be at least two levels deep, a directory of the stack's own below a shared one (e.g. {example})"
    return None


def mount_dir_problem(path: str) -> str | None:
    """Why host directory `path` may not be mounted into a root container, or None."""
    # Unlike a dedicated directory, it may lie inside a system tree (a package puts Cassandra in /usr/share).
    if path == "/":
        return "would mount the host's '/'"
    if path in SYSTEM_DIRS:
        return f"would mount the system directory {path}"
    return None


def env_file_problem(path: str) -> str | None:
    """Why `path` cannot be the Cassandra unit's EnvironmentFile, or None."""
    directory, name = posixpath.split(path)
    if name == INCLUDE_FILE_NAME:
        return (
            f"must not be named {INCLUDE_FILE_NAME}: that is Cassandra's include file (includeFile), "
            "and each file gets a block of its own"
        )
    allowed = (
        f"an EnvironmentFile lies in {' or '.join(sorted(ENV_FILE_DIRS))} with a name starting "
        f"'{ENV_FILE_PREFIX}', or in a directory outside the system's (e.g. /opt/cassandra/pyroscope.env)"
    )
    if directory in ENV_FILE_DIRS:
        refused = not name.startswith(ENV_FILE_PREFIX)
    else:
        refused = mount_dir_problem(directory) is not None or system_tree(directory) is not None
    return f"{path} is not a Cassandra EnvironmentFile: {allowed}" if refused else None


def include_mount(include_file: str) -> str:
    """The host directory the installer mounts for the include file(s)."""
    # With a `*`, the directory above it, so that the installer sees every version (not just `current`'s).
    parts = include_file.split("/")
    if "*" in parts:
        return "/".join(parts[: parts.index("*")]) or "/"
    return posixpath.dirname(include_file)
