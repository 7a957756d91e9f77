"""The v1alpha1 cluster spec as pydantic models: the only place defaults live."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

from gen.errors import short_repr
from gen.spec import hostpaths, units
from gen.spec.platforms import port_clash

API_VERSION = "gen.profiling/v1alpha1"
MAX_NAME = 40
# Pyroscope 2.x's metastore raft listener (localhost): its upstream default, server.raftPort's default.
RAFT_PORT = 9099
# Memberlist's default port: Tempo, Loki and easy-db-lab's own Pyroscope bind it on the control node.
MEMBERLIST_DEFAULT_PORT = 7946
ALLOY_HTTP_PORT = 12345
MAVEN_AGENT_URL = "https://repo1.maven.org/maven2/io/pyroscope/agent/{v}/agent-{v}.jar"
# Labels every Java agent profile carries already, and why a spec may not set them: the server
# refuses every profile with a label name twice (jfr-parser's pyroscope.Labels adds service_name,
# pyroscope_spy and jfr_event).
RESERVED_PROFILE_LABELS = {
    "cluster": "gen sets it",
    "hostname": "gen sets it",
    "service_name": "it is cassandra.applicationName; set that instead",
    "pyroscope_spy": "the server sets it from the agent's upload",
    "jfr_event": "the server sets it from the agent's upload",
    # The agent (2.7.0 and later) adds these dotted names, which a 1.x server stores with '_':
    # beside a spec label of that name, every profile carries one label twice.
    **{
        name.replace(".", "_"): f"the Java agent sets it as {name}"
        for name in ("otel.scope.name", "otel.scope.version", "process.runtime.name", "process.runtime.version")
    },
}
# Every Application gen renders lives in the Argo CD namespace: `profiling-<cluster>` for
# each cluster, and the bootstrap's root (whose AppProject has the same name).
APP_PREFIX = "profiling-"
ROOT_NAME = APP_PREFIX + "fleet"


class Model(BaseModel):
    """Base of every input model: strict (no silent coercion), frozen, camelCase keys, unknown keys refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, alias_generator=to_camel)


class FieldError(ValueError):
    """Raised by a whole-model check to blame one field (`loc`, relative to the model); the loader maps it."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Pattern:
    """A regular expression the whole string must match, with gen's message; also written into the JSON Schema."""

    def __init__(self, pattern: re.Pattern[str] | str, message: str = "") -> None:
        self.regex = re.compile(pattern)
        self.message = message

    def _check(self, value: str) -> str:
        # fullmatch: `$` alone would let a trailing line break through.
        if self.regex.fullmatch(value) is None:
            raise ValueError(self.message or f"must match {self.regex.pattern}, got string {short_repr(value)}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        return {**handler(schema), "pattern": self.regex.pattern}


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path, got {value!r}")
    if value == "/":
        return value  # refused, where it matters, by the field's own check
    parts = value.split("/")
    if ".." in parts:
        raise ValueError("must not contain '..'")
    normal = "/" + "/".join(p for p in parts if p not in ("", "."))
    if normal != value:
        raise ValueError(f"must be normalised (write {normal!r})")
    if any(not re.fullmatch(r"[A-Za-z0-9._+@-]+", p) for p in parts[1:]):
        raise ValueError("may hold only letters, digits and . _ + @ - in each part")
    return value


def _include_path(value: str) -> str:
    # One whole segment may be `*`: the installer hooks every match (each installed Cassandra
    # version). Anything more would be a pattern that the installer and the mount could not share.
    if not value.startswith("/"):
        return _absolute_path(value)
    parts = value.split("/")
    stars = [i for i, p in enumerate(parts) if p == "*"]
    if len(stars) > 1:
        raise ValueError("at most one path segment may be '*'")
    if any(c in p for p in parts for c in "*?[]" if p != "*"):
        raise ValueError("the only pattern allowed is one whole path segment '*' (no other * ? [ ])")
    if stars:
        if stars[0] == 1:
            raise ValueError("the first path segment may not be '*' (the DaemonSet would have to mount /)")
        if stars[0] == len(parts) - 1:
            raise ValueError("the last path segment may not be '*'; name the include file")
        parts[stars[0]] = "x"
    _absolute_path("/".join(parts))
    if parts[-1] != hostpaths.INCLUDE_FILE_NAME:
        raise ValueError(f"must name Cassandra's include file, {hostpaths.INCLUDE_FILE_NAME}, got {parts[-1]!r}")
    problem = hostpaths.mount_dir_problem(hostpaths.include_mount(value))
    if problem is not None:
        # The installer mounts the directory above the file (or above the `*`) read-write.
        raise ValueError(f"{problem} into the installer; name the include file in Cassandra's own directory")
    return value


def _refuse(problem: Callable[[Any], str | None]) -> AfterValidator:
    """A check from a function that says what is wrong with a value (None: nothing)."""

    def check(value: Any) -> Any:
        found = problem(value)
        if found is not None:
            raise ValueError(found)
        return value

    return AfterValidator(check)


def refused(bad: object, message: str) -> AfterValidator:
    return _refuse(lambda value: message if value == bad else None)


def _matches(pattern: str | re.Pattern[str], message: str) -> AfterValidator:
    """Refuse a string (None passes) that `pattern` does not match from its start; `message` may name {value!r}."""
    return _refuse(lambda value: None if value is None or re.fullmatch(pattern, value) else message.format(value=value))


def split_image(image: str) -> tuple[str, str, str]:
    """An image reference's repository, tag and digest (each "" when absent)."""
    name, _, digest = image.partition("@")
    repo, colon, tag = name.rpartition(":")
    # A colon before the last `/` is a registry's port, not a tag.
    return (repo, tag, digest) if colon and "/" not in tag else (name, "", digest)


def _image(value: str) -> str:
    repo, tag, digest = split_image(value)
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValueError("digest must be sha256: followed by 64 lowercase hex digits")
    if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*", repo):
        raise ValueError(f"{value!r} is not an image reference")
    if tag == "latest":
        raise ValueError("the tag 'latest' is refused; pin a version")
    if tag and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise ValueError(f"{tag!r} is not a valid image tag")
    if not tag and not digest:
        raise ValueError("image must carry a tag or a digest (e.g. name:1.2.3)")
    name = repo.removeprefix("docker.io/")
    if name in _VERSION_PREFIX and not digest and re.fullmatch(r"v?\d+\.\d+\.\d+", tag):
        spelt = _VERSION_PREFIX[name] + tag.removeprefix("v")
        if tag != spelt:
            raise ValueError(f"{name} publishes no tag {tag!r}; its release tags are spelt like {spelt!r}")
    return value


# How the official images spell a release's tag: the other spelling does not exist, and the pod never pulls
# (with a digest, the digest is pulled and the tag only read).
_VERSION_PREFIX = {"grafana/alloy": "v", "grafana/pyroscope": ""}


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a network in CIDR form (e.g. 10.0.1.0/24): {e}") from None
    if str(network) != value:
        raise ValueError(f"write {str(network)!r}")
    return value


def _go_duration(value: str) -> str:
    ns = units.go_duration_ns(value)
    if ns is None:
        raise ValueError(f"{value!r} is not a duration (e.g. 15s, 1m30s)")
    if ns < 10**9 or ns % 10**9:
        raise ValueError("must be a whole number of seconds, at least 1s")
    return value


def _upload_interval(value: str) -> str:
    if units.AGENT_INTERVAL.fullmatch(value):
        if units.agent_interval_ns(value) < 10**9:
            # A bare number is nanoseconds to the agent: "10" meant as seconds would upload without pause.
            unit = "nanoseconds" if value.isdigit() else "less than a second"
            raise ValueError(f"{value!r} is {unit} to the Java agent; upload at least every second (e.g. 10s)")
        return value
    if re.fullmatch(r"[0-9]+ns", value):
        # It ends in s, so the agent reads it as seconds, fails on the n and uses 10s instead.
        raise ValueError(f"{value!r}: the Java agent cannot read ns (it falls back to 10s); write us, ms or s")
    raise ValueError(
        f"{value!r}: the Java agent reads only a number with us, ms or s, or bare nanoseconds (e.g. 10s, 60s; never 1m)"
    )


def _one_event(value: object) -> object:
    if isinstance(value, list) or (isinstance(value, str) and "," in value):
        items = value if isinstance(value, list) else value.split(",")
        names = {str(i).strip() for i in items}
        if {"cpu", "wall"} <= names:
            raise ValueError("cpu and wall are mutually exclusive; give exactly one event")
        raise ValueError("exactly one event (cpu, itimer, wall or ctimer), not a list")
    return value


def _node_selector(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        if not units.LABEL_NAME.fullmatch(k):
            raise ValueError(f"{short_repr(k)} is not a valid node label key")
        if not units.LABEL_VALUE.fullmatch(v):
            raise ValueError(f"{short_repr(v)} (for {short_repr(k)}) is not a valid node label value")
    return value


def _server_image(value: str) -> str:
    major_of(value)
    # The 1.x config sets compactor.data_dir and limits.compactor_blocks_retention_period, which
    # 1.0 and 1.1 (no compactor yet) refuse as unknown keys at start-up.
    if (version := version_of(value)) in ((1, 0), (1, 1)):
        raise ValueError(
            f"Pyroscope 1.{version[1]} is not supported (1.x from 1.2 on and 2.x are): it has no "
            "compactor, and refuses the compactor keys of the 1.x config at start-up"
        )
    return value


# The user part of a URL's authority, up to its last @.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#]*)@")


def _no_credentials(instead: str) -> AfterValidator:
    """Refuse a URL with a secret before its host: any user part of http(s), a password of ssh."""

    # `git@host:org/repo` and `ssh://git@host/...` name a user, not a secret: the key stays in Argo CD.
    def problem(value: str | None) -> str | None:
        m = _USERINFO.match(value or "")
        if m is None or (m["scheme"].lower() not in ("http", "https") and ":" not in m["userinfo"]):
            return None
        return f"must not carry credentials (user:password@ or token@): they would be committed to git; {instead}"

    return _refuse(problem)


def _profile_labels(value: dict[str, str]) -> dict[str, str]:
    for k, val in value.items():
        for what, text, limit in (("key", k, units.MAX_LABEL_KEY), ("value", val, units.MAX_LABEL_VALUE)):
            if not text:
                raise ValueError(f"label {what}s must not be empty")
            if len(text) > limit:
                # The Pyroscope server refuses every profile that carries it.
                raise ValueError(f"label {what} {short_repr(text)} is longer than the server accepts ({limit})")
            if "," in text or "=" in text:
                raise ValueError(f"label {what} {short_repr(text)} must not contain ',' or '='")
        if not units.PROFILE_LABEL_KEY.fullmatch(k):
            raise ValueError(
                f"label key {short_repr(k)} must start with a letter or '_' and hold only letters, digits, '_' and '.'"
            )
        if k.startswith("__"):
            raise ValueError(f"label key {k!r}: names starting with '__' are Pyroscope's own; the server drops them")
        # A 1.x server stores a '.' as '_', so `service.name` is `service_name` there.
        legacy = k.replace(".", "_")
        if legacy in RESERVED_PROFILE_LABELS:
            shown = repr(k) if legacy == k else f"{k!r} (stored as {legacy!r} by a 1.x server)"
            raise ValueError(f"label {shown} is reserved: {RESERVED_PROFILE_LABELS[legacy]}")
        if legacy != k and legacy in value:
            raise ValueError(f"labels {k!r} and {legacy!r} are one label, {legacy!r}, to a 1.x server; keep one")
        if not units.PROFILE_TOKEN.fullmatch(val):
            raise ValueError(f"label value {short_repr(val)} may hold only letters, digits and . _ : / @ + -")
    return value


_DNS_LABEL = Pattern(units.DNS1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits and '-')")
Name = Annotated[str, _DNS_LABEL]
Namespace = Annotated[str, Field(max_length=63), _DNS_LABEL]
HostPath = Annotated[str, Field(max_length=units.MAX_PATH), AfterValidator(_absolute_path)]
Image = Annotated[str, AfterValidator(_image)]
NodeSelector = Annotated[dict[str, str], AfterValidator(_node_selector)]
GoDuration = Annotated[str, AfterValidator(_go_duration)]
ServerPort = Annotated[
    int, Field(ge=1024, le=65535), refused(ALLOY_HTTP_PORT, f"port {ALLOY_HTTP_PORT} is Alloy's HTTP port")
]


# The cluster name whose Application would take the name of the bootstrap's root.
_RESERVED_NAME = ROOT_NAME.removeprefix(APP_PREFIX)


class Metadata(Model):
    name: Annotated[
        str,
        Field(max_length=MAX_NAME),
        _DNS_LABEL,
        refused(
            _RESERVED_NAME,
            f"{_RESERVED_NAME!r} is reserved: its Application would be named {ROOT_NAME!r}, the "
            "name of the bootstrap's root Application, and replace it; pick another name",
        ),
    ] = Field(description="The cluster's name: the spec's file name, the overlay's folder, the Application's suffix.")


class ControlNode(Model):
    address: Annotated[
        str, _refuse(lambda v: None if units.is_host_address(v) else f"{v!r} is not an IP address or DNS name")
    ] = Field(description="IP address or DNS name of the control node, as the Cassandra hosts dial the server.")
    node_selector: NodeSelector = Field(
        {"node-role.kubernetes.io/control-plane": "true"},
        description="Node labels that pick the control node for the Pyroscope server.",
    )


class Server(Model):
    image: Annotated[Image, AfterValidator(_server_image)] = Field(
        "grafana/pyroscope:2.2.1", description="Pyroscope server image; its 1.x or 2.x tag picks the config format."
    )
    port: ServerPort = Field(4040, description="HTTP port: the agents push profiles here and Grafana queries it.")
    grpc_port: ServerPort = Field(9095, description="gRPC port of the server.")
    memberlist_port: Annotated[
        ServerPort,
        refused(
            MEMBERLIST_DEFAULT_PORT,
            f"{MEMBERLIST_DEFAULT_PORT} is memberlist's default port, which Tempo, Loki "
            "and easy-db-lab's own Pyroscope already bind on the control node; use another (the default is 7947)",
        ),
    ] = Field(7947, description="Memberlist port (not 7946, which other servers on the control node bind).")
    # Calico's Felix (Calico, Canal) serves its health checks on localhost:9099 on every node.
    raft_port: ServerPort = Field(
        RAFT_PORT, description="Port of the 2.x metastore's raft listener, on localhost (2.x only)."
    )
    storage_path: Annotated[HostPath, _refuse(lambda v: hostpaths.dedicated_dir_problem(v, "/var/lib/pyroscope"))] = (
        Field("/mnt/db1/pyroscope", description="Host directory of the stack's own that holds the profiles.")
    )
    retention: Annotated[
        str,
        Pattern(
            units.RETENTION, "must be a duration in h, m and s, largest first (e.g. 168h, 36h30m; 0 keeps forever)"
        ),
    ] = Field("168h", description="How long profiles are kept (h, m, s; 0 keeps forever).")
    host_network: bool = Field(
        True,
        description="Run on the control node's network; false puts the server on the pod network with only its "
        "HTTP port on the node, so that a NetworkPolicy can admit just allowFrom.",
    )
    allow_from: Annotated[list[Annotated[str, AfterValidator(_cidr)]], Field(min_length=1, max_length=64)] | None = (
        Field(None, description="CIDRs allowed to reach the server (with hostNetwork: false only).")
    )

    @model_validator(mode="after")
    def _listeners(self) -> Self:
        # NetworkPolicies do not apply to host-network pods: an allowFrom there would be a
        # promise gen could not keep, and the pod-network server needs one to be reachable.
        if self.host_network and self.allow_from is not None:
            raise ValueError(
                "allowFrom needs hostNetwork: false (a NetworkPolicy does not apply to a host-network server; "
                "restrict its ports with host firewall rules instead)"
            )
        if not self.host_network and self.allow_from is None:
            raise ValueError(
                "hostNetwork: false needs allowFrom, the CIDRs of the hosts that send profiles "
                "or query the server (e.g. [10.0.1.0/24])"
            )
        if self.major < 2 and "raft_port" in self.model_fields_set:
            raise FieldError(("raftPort",), "a 1.x server has no raft listener; remove raftPort or use a 2.x image")
        # Every listener shares one network namespace (the node's, on the host network).
        seen: dict[int, str] = {}
        for name, port in self.ports.items():
            first = seen.setdefault(port, name)
            if first != name:
                raise ValueError(
                    f"{_PORT_FIELDS[first]} and {_PORT_FIELDS[name]} are both {port}; the server's ports must differ"
                )
        return self

    @model_validator(mode="after")
    def _retention_holds(self) -> Self:
        # Before 2.2.0 the metastore's retention cleanup is off by default, and switching it on
        # (metastore.index.cleanup_interval) tombstones shards that still hold recent profiles.
        if (version := version_of(self.image)) in ((2, 0), (2, 1)) and re.search(r"[1-9]", self.retention):
            raise FieldError(
                ("image",),
                f"Pyroscope 2.{version[1]} deletes no profiles, so retention {self.retention} would "
                "not hold (its retention cleanup is off, and switching it on deletes recent profiles too): use 2.2.0 "
                "or later, or retention 0 to keep every profile",
            )
        return self

    @property
    def major(self) -> int:
        return major_of(self.image)

    @property
    def ports(self) -> dict[str, int]:
        """Every port the server listens on, by name: http, grpc, memberlist, and raft on 2.x."""
        out = {"http": self.port, "grpc": self.grpc_port, "memberlist": self.memberlist_port}
        if self.major >= 2:
            out["raft"] = self.raft_port
        return out

    @property
    def node_ports(self) -> dict[str, int]:
        """The ports the server pod binds on the control node, by name: off the host network, only http."""
        return self.ports if self.host_network else {"http": self.port}


_PORT_FIELDS = {"http": "port", "grpc": "grpcPort", "memberlist": "memberlistPort", "raft": "raftPort"}


def version_of(image: str) -> tuple[int, int] | None:
    """The major and minor version an image's tag names (1.21.1, v1.21: (1, 21)); None without one."""
    m = re.match(r"^v?(\d+)\.(\d+)", split_image(image)[1])
    return (int(m[1]), int(m[2])) if m else None


def major_of(image: str) -> int:
    version = version_of(image)
    if version is None:
        raise ValueError("needs a version tag (e.g. grafana/pyroscope:2.2.1) to pick the config format")
    major = version[0]
    if major not in (1, 2):
        raise ValueError(f"Pyroscope {major}.x is not supported (1.x and 2.x are)")
    return major


class Ebpf(Model):
    enabled: bool = Field(True, description="Run the Alloy eBPF profiler on every node.")
    image: Image = Field("grafana/alloy:v1.18.1", description="Alloy image.")
    sample_rate: int = Field(97, ge=1, le=1000, description="Samples per second.")
    collect_interval: GoDuration = Field("15s", description="How often profiles are collected (whole seconds).")
    # Alloy's own default is none, which leaves C++ frames mangled.
    demangle: Literal["none", "simplified", "templates", "full"] = Field(
        "full", description="How C++ symbols are demangled."
    )
    privileged: bool = Field(True, description="Run the profiler's container privileged.")

    @property
    def collect_seconds(self) -> int:
        return (units.go_duration_ns(self.collect_interval) or 0) // 10**9


class Grafana(Model):
    enabled: bool | None = Field(
        None, description="Render the datasource and dashboard for Grafana (default: true on platform kubernetes)."
    )
    namespace: Namespace = Field("monitoring", description="Namespace of Grafana, whose sidecar reads them.")
    dashboard: bool = Field(True, description="Render the profiling dashboard.")
    datasource_name: str = Field(
        "Pyroscope", min_length=1, max_length=190, description="Name of the Pyroscope datasource."
    )
    datasource_uid: Annotated[str, Pattern(r"^[A-Za-z0-9_-]+$", "may hold only letters, digits, '-' and '_'")] = Field(
        "pyroscope", max_length=40, description="UID of the Pyroscope datasource."
    )


class Agent(Model):
    version: Annotated[str, Pattern(r"^\d+\.\d+\.\d+$", "must be a version like 2.9.1")] = Field(
        "2.9.1", description="Pyroscope Java agent version (from Maven Central unless url is set)."
    )
    url: Annotated[
        str | None,
        _no_credentials("serve the jar where the hosts can fetch it without them"),
        _matches(r"^https?://[^\s'\"`$\\]+$", "must be an http(s) URL without spaces or quotes"),
    ] = Field(None, description="Where the hosts fetch the agent's jar instead of Maven Central.")
    sha256: Annotated[
        str | None,
        _matches(r"^[0-9a-fA-F]{64}$", "must be 64 hexadecimal characters"),
        AfterValidator(lambda value: None if value is None else value.lower()),
    ] = Field(None, description="SHA-256 of the jar: the installer refuses any other.")

    @property
    def download_url(self) -> str:
        return self.url or MAVEN_AGENT_URL.format(v=self.version)


class Profiler(Model):
    event: Annotated[Literal["cpu", "itimer", "wall", "ctimer"], BeforeValidator(_one_event)] = Field(
        "cpu", description="The one event async-profiler samples."
    )
    alloc: Annotated[
        str | None, _matches(units.AGENT_SIZE, "{value!r} is not a byte threshold such as 512k, 1m or 1048576")
    ] = Field("512k", description="Allocation profiling threshold in bytes (null: off).")
    lock: Annotated[
        str | None,
        _matches(
            units.AGENT_LOCK,
            "{value!r} is not a time threshold: a number with ns, us, ms or s, or bare nanoseconds (e.g. 10ms)",
        ),
    ] = Field("10ms", description="Lock profiling threshold (null: off).")
    # The pattern never fires after the check; it puts the accepted forms into the JSON Schema.
    upload_interval: Annotated[str, AfterValidator(_upload_interval), Pattern(units.AGENT_INTERVAL)] = Field(
        "10s", description="How often the agent uploads profiles (us, ms or s)."
    )


class Toleration(Model):
    # The API server refuses the whole DaemonSet over a toleration whose key is no label key, whose
    # value is no label value, or whose tolerationSeconds comes with an effect other than NoExecute.
    key: (
        Annotated[str, Pattern(units.LABEL_NAME, "is not a taint key (a label key, e.g. example.com/dedicated)")] | None
    ) = Field(None, description="Taint key.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists or Equal.")
    value: (
        Annotated[str, Pattern(units.LABEL_VALUE, "is not a taint value (at most 63 letters, digits, - _ .)")] | None
    ) = Field(None, description="Taint value (with Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(None, description="Taint effect.")
    toleration_seconds: int | None = Field(None, description="How long a NoExecute taint is tolerated.")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("a toleration with operator Exists takes no value")
        if self.operator == "Equal" and self.key is None:
            raise ValueError("a toleration with operator Equal needs a key")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise FieldError(("tolerationSeconds",), "applies only to effect NoExecute; set effect: NoExecute")
        return self


class Cassandra(Model):
    enabled: bool = Field(True, description="Install the Java agent on the Cassandra hosts.")
    state: Literal["present", "absent"] = Field("present", description="absent uninstalls the agent from the hosts.")
    node_selector: NodeSelector = Field({"type": "db"}, description="Node labels that pick the Cassandra hosts.")
    tolerations: list[Toleration] = Field([], description="Tolerations of the installer.")
    agent: Agent = Field(Agent(), description="The Java agent's jar.")
    install_dir: Annotated[HostPath, _refuse(lambda v: hostpaths.dedicated_dir_problem(v, "/usr/local/pyroscope"))] = (
        Field("/usr/local/pyroscope", description="Host directory of the stack's own for the jar and the snippet.")
    )
    include_file: Annotated[str, Field(max_length=units.MAX_PATH), AfterValidator(_include_path)] = Field(
        "/usr/local/cassandra/*/bin/cassandra.in.sh",
        description="Cassandra's include file (one whole segment may be *, for each installed version).",
    )
    env_file: Annotated[HostPath, _refuse(hostpaths.env_file_problem)] = Field(
        "/etc/default/cassandra", description="Cassandra's EnvironmentFile, which gets the agent's options."
    )
    application_name: Annotated[
        str,
        Field(min_length=1, max_length=units.MAX_LABEL_VALUE),
        Pattern(units.SERVICE_NAME, "may hold only letters, digits and . _ / - (the server refuses any other)"),
    ] = Field("cassandra", description="The server's service_name for Cassandra's profiles.")
    profiler: Profiler = Field(Profiler(), description="async-profiler settings.")
    labels: Annotated[dict[str, str], Field(max_length=units.MAX_PROFILE_LABELS), AfterValidator(_profile_labels)] = (
        Field({}, description="Extra labels on every profile.")
    )

    @model_validator(mode="after")
    def _distinct_paths(self) -> Self:
        # Each file gets its own block (envFile and includeFile differ by name already): the env
        # block inside installDir would take the place of the jar or the snippet.
        if self.include_file.startswith(self.install_dir + "/"):
            raise ValueError("includeFile must not lie inside installDir (uninstall removes installDir's files)")
        if self.env_file == self.install_dir or self.env_file.startswith(self.install_dir + "/"):
            raise FieldError(("envFile",), "must not lie inside installDir, which holds the agent's jar and snippet")
        return self


class Destination(Model):
    server: Annotated[
        str | None,
        _no_credentials("register the cluster with its credentials in Argo CD (argocd cluster add)"),
        _matches(r"^https://[^\s/]+(/[^\s]*)?$", "must be the https:// URL of a Kubernetes API server"),
    ] = Field(None, description="https:// URL of the Kubernetes API server (or give name).")
    name: Annotated[
        str | None,
        _matches(
            r"^[A-Za-z0-9]([A-Za-z0-9._@:-]*[A-Za-z0-9])?$", "must be the name of a cluster registered in Argo CD"
        ),
    ] = Field(None, description="Name of the cluster registered in Argo CD (or give server).")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.server is None) == (self.name is None):
            raise ValueError("give exactly one of server or name")
        return self


# Shared with fleet.yaml, so that both accept the same repositories and revisions.
GitURL = Annotated[
    str,
    _no_credentials("give them to Argo CD as a repository Secret (argocd repo add)"),
    _matches(
        r"^(https://[^\s/@]+(:\d+)?/[^\s]+|ssh://[^\s/]+(:\d+)?/[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$",
        "{value!r} is not a git URL (https://host/org/repo.git or git@host:org/repo.git)",
    ),
]
Revision = Annotated[str, Field(min_length=1), Pattern(r"^[A-Za-z0-9._/+-]+$", "must be a branch, tag or commit")]


class ArgoCD(Model):
    repo_url: GitURL = Field(alias="repoURL", description="Git repository Argo CD reads the overlay from.")
    target_revision: Revision = Field("main", description="Branch, tag or commit of that repository.")
    project: Annotated[
        Name | None,
        refused(
            ROOT_NAME,
            f"must not be {ROOT_NAME!r}: the bootstrap's own project, which may write Applications and AppProjects",
        ),
    ] = Field(None, description="Argo CD project (default: the fleet's own least-privilege AppProject).")
    destination: Destination = Field(description="The cluster the stack is deployed to.")
    automated: bool = Field(True, description="Sync automatically (prune and self-heal).")


Platform = Literal["easy-db-lab", "kubernetes"]
# Where the stack runs when the spec does not say. easy-db-lab keeps its profiling
# objects in `default`, and the stack takes them over in place, so only that one fits there.
PLATFORM_NAMESPACE = {"easy-db-lab": "default", "kubernetes": "profiling"}
# Namespaces whose admission a privileged Pod Security label would weaken for everything else in them.
SHARED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class ClusterSpec(Model):
    platform: Platform = Field("easy-db-lab", description="What built the cluster; it settles several defaults.")
    namespace: Namespace | None = Field(
        None, description="Namespace of the stack (default: default on easy-db-lab, profiling on kubernetes)."
    )
    control_node: ControlNode = Field(description="The node that runs the Pyroscope server.")
    server: Server = Field(Server(), description="The Pyroscope server.")
    ebpf: Ebpf = Field(Ebpf(), description="The Alloy eBPF profiler.")
    grafana: Grafana = Field(Grafana(), description="Grafana datasource and dashboard.")
    cassandra: Cassandra = Field(Cassandra(), description="The Java agent on the Cassandra hosts.")
    argocd: ArgoCD = Field(description="Where Argo CD reads the overlay and deploys it.")

    @model_validator(mode="before")
    @classmethod
    def _platform_defaults(cls, data: Any) -> Any:
        # The defaults that depend on the platform are filled in before validation, so that the
        # model holds them and every check below sees what the user wrote or the platform implies.
        platform = data.get("platform", "easy-db-lab") if isinstance(data, dict) else None
        if platform not in tuple(PLATFORM_NAMESPACE):  # not hashed: the value may be a list
            return data
        out = {**data}
        if out.get("namespace") is None:
            out["namespace"] = PLATFORM_NAMESPACE[platform]
        grafana = out.get("grafana", {})
        if isinstance(grafana, dict) and grafana.get("enabled") is None:
            out["grafana"] = {**grafana, "enabled": platform == "kubernetes"}
        return out

    @model_validator(mode="after")
    def _platform(self) -> Self:
        if self.platform == "easy-db-lab":
            if self.namespace != "default":
                raise FieldError(
                    ("namespace",),
                    "must be 'default' on platform easy-db-lab: the stack takes over easy-db-lab's profiling "
                    "objects there (set platform: kubernetes for a namespace of its own)",
                )
            if self.grafana.enabled:
                raise FieldError(
                    ("grafana", "enabled"),
                    "must be false on platform easy-db-lab: its Grafana already has the Pyroscope datasource and a "
                    "profiling dashboard, and reads no sidecar",
                )
            if not self.ebpf.privileged:
                # Its next up applies privileged: true over the taken-over container with server-side apply.
                raise FieldError(
                    ("ebpf", "privileged"),
                    "must be true on platform easy-db-lab: its next up sets privileged: true on the taken-over "
                    "container, which the API server refuses beside allowPrivilegeEscalation: false, and the up fails",
                )
        elif self.namespace in SHARED_NAMESPACES:
            raise FieldError(
                ("namespace",),
                f"{self.namespace!r} is shared: the stack's namespace gets the privileged Pod Security level, "
                "which would weaken admission for everything else there; use a namespace of its own",
            )
        for name, port in self.server.node_ports.items():
            taken = port_clash(self.platform, port, "control", "the Pyroscope server")
            if taken is not None:
                raise FieldError(
                    ("server", _PORT_FIELDS[name]),
                    f"port {port} is already bound on the control node by {taken.owner} "
                    f"(platform {self.platform}); pick another",
                )
        return self

    @property
    def stack_namespace(self) -> str:
        """The namespace the stack runs in (settled from the platform when the spec left it out)."""
        return self.namespace or PLATFORM_NAMESPACE[self.platform]

    @property
    def takes_over_easy_db_lab(self) -> bool:
        return self.platform == "easy-db-lab"


class Cluster(Model):
    """A cluster's profiling stack: one file in clusters/, rendered into overlays/<name>/."""

    api_version: Literal["gen.profiling/v1alpha1"] = Field(description="The spec's version.")
    kind: Literal["Cluster"] = Field(description="Always Cluster.")
    metadata: Metadata = Field(description="The cluster's name.")
    spec: ClusterSpec = Field(description="What to deploy and where.")

    @model_validator(mode="after")
    def _jvm_options(self) -> Self:
        # Every Cassandra JVM gets these words: too many bytes and no node starts at all.
        from gen.components import cassandra, common

        c = self.spec.cassandra
        size = cassandra.jvm_options_size(c, self.name, server_address=common.server_url(self))
        if size > units.MAX_JVM_OPTIONS:
            where = ("spec", "cassandra", "labels") if c.labels else ("spec", "cassandra")
            raise FieldError(
                where,
                f"the Java agent's options would take {size} bytes of every Cassandra node's command line; "
                f"at most {units.MAX_JVM_OPTIONS} are allowed (shorten the labels or the application name)",
            )
        return self

    @property
    def name(self) -> str:
        return self.metadata.name
