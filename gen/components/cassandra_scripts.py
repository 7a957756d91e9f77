"""The settings snippet of the Cassandra agent ConfigMap, rendered from the spec with the template in gen/resources."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gen.components.common import filled, resource_text
from gen.spec import units

JAR_NAME = "pyroscope.jar"
SNIPPET_NAME = "cassandra-pyroscope.sh"
BEGIN_MARKER = "# BEGIN gen-profiling"
END_MARKER = "# END gen-profiling"
_TEMPLATE = "cassandra-pyroscope.sh.in"
# The template starts with this line, so that shellcheck reads it as it is.
_DIRECTIVE = "# shellcheck shell=sh\n"

# Every rendered value lands inside shell quotes and then in one word of JVM_EXTRA_OPTS, which
# cassandra-env.sh splits on blanks. The spec models already restrict values to this set; the
# check here keeps a caller that bypasses them from producing a script that breaks on the host.
# Whole-string matches: `$` alone lets a final line break through, which would end the shell line.
_HOST_PATH = re.compile(r"^(/[A-Za-z0-9._+@-]+)+$")
# Brackets for an IPv6 literal; inside double quotes, and never a file name that could match.
_SERVER_URL = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$")


def _token(what: str, value: str) -> str:
    if not units.PROFILE_TOKEN.fullmatch(value):
        raise ValueError(f"{what} {value!r} may hold only letters, digits and . _ : / @ + -")
    return value


def settings_snippet(header: str, **settings: Any) -> str:
    """Full text of cassandra-pyroscope.sh, which cassandra.in.sh sources (`settings`: `_agent_options`'s)."""
    jar, props = _agent_options(**settings)
    lines = [f'    gen_profiling_opts="$gen_profiling_opts -Dpyroscope.{name}={value}"' for name, value in props]
    if not resource_text(_TEMPLATE).startswith(_DIRECTIVE):
        raise RuntimeError(f"gen/resources/{_TEMPLATE} must start with {_DIRECTIVE!r}")
    # The header must stay one comment line: the shellcheck directive has to be the second line.
    if not header.startswith("#") or "\n" in header or "\r" in header:
        raise ValueError(f"header must be one comment line starting with '#', got {header!r}")
    return f"{header}\n" + filled({"JAR": jar, "PROPS": "\n".join(lines)}, _TEMPLATE)


def options_size(**settings: Any) -> int:
    """Bytes of the words the snippet adds to JVM_EXTRA_OPTS (blanks included), for the longest host name."""
    jar, props = _agent_options(**settings)
    words = [f"-javaagent:{jar}", *(f"-Dpyroscope.{name}={value}" for name, value in props)]
    text = " ".join(words).replace(HOST_PLACEHOLDER, "h" * units.HOST_NAME_MAX)
    return len(text.encode("utf-8"))


# Where the snippet puts the host's name, which is known only when it runs there.
HOST_PLACEHOLDER = "$gen_profiling_host"


def _agent_options(
    *,
    install_dir: str,
    application_name: str,
    event: str,
    alloc: str | None,
    lock: str | None,
    upload_interval: str,
    cluster: str,
    server_address: str,
    labels: Mapping[str, str],
) -> tuple[str, list[tuple[str, str]]]:
    """The agent jar's path and the -Dpyroscope. properties, as (name, value) in order."""
    if not _HOST_PATH.fullmatch(install_dir):
        raise ValueError(f"install_dir {install_dir!r} must be a normalised absolute path")
    if not _SERVER_URL.fullmatch(server_address):
        raise ValueError(f"server_address {server_address!r} must be http(s)://<host>:<port>")
    jar = f"{install_dir}/{JAR_NAME}"
    props = [
        ("application.name", _token("application_name", application_name)),
        ("server.address", server_address),
        ("format", "jfr"),
        ("profiler.event", _token("event", event)),
    ]
    # An empty threshold would switch the profile off anyway; leaving the property out keeps
    # the agent's own default reasoning out of the picture.
    props += [(f"profiler.{n}", _token(n, v)) for n, v in (("alloc", alloc), ("lock", lock)) if v is not None]
    props.append(("upload.interval", _token("upload_interval", upload_interval)))
    pairs = [f"cluster={_token('cluster', cluster)}", f"hostname={HOST_PLACEHOLDER}"]
    for key in sorted(labels):
        if not units.PROFILE_LABEL_KEY.fullmatch(key):
            raise ValueError(f"label key {key!r} must be a letter or '_' then letters, digits, _ .")
        pairs.append(f"{key}={_token('label value', labels[key])}")
    props.append(("labels", ",".join(pairs)))
    return jar, props
