"""What a change does when Argo CD applies it: the notes a reviewer needs next to the diff."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from gen.components import cassandra, ebpf, server
from gen.components.argocd import RESOURCES_FINALIZER, deploys_to
from gen.render import layout
from gen.review.diffing import HASHED_KINDS, WORKLOAD_KINDS, Comparison, FieldChange, Key, ObjectChange, references
from gen.validate.objects import ident

# The Deployment of base/server; its strategy is Recreate because two servers
# must never share the host data directory.
SERVER_DEPLOYMENT = "pyroscope"
SERVER_DATA_VOLUME = "data"
# ConfigMap keys that the Cassandra JVM reads only when it starts: the settings
# snippet sourced by cassandra.in.sh, and the jar pin.
CASSANDRA_RESTART_PATHS = {("data", k) for k in ("cassandra-pyroscope.sh", "AGENT_URL", "AGENT_SHA256")}

# Kinds whose spec.selector the API server never lets change.
SELECTOR_KINDS = frozenset({"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"})

SERVER_RECREATE = "the Pyroscope server restarts with strategy Recreate: ingestion pauses until the new pod is ready"
CASSANDRA_RESTART = (
    "Cassandra must be restarted node by node to load the changed agent settings "
    "(the installer only rewrites the files on the hosts; a running JVM keeps its agent)"
)
CASSANDRA_UNINSTALL = (
    "Cassandra must be restarted node by node to drop the agent "
    "(the installer only removes the files on the hosts; a running JVM keeps its agent)"
)
CASSANDRA_NEW = "Cassandra loads the agent only when restarted: restart it node by node once the installer has run"
CASSANDRA_LEFT = (
    "the Java agent stays installed on the Cassandra hosts: deleting the DaemonSet does not uninstall it "
    "(set spec.cassandra.state: absent and let it sync first)"
)
CASSANDRA_SAME_PIN = (
    "the agent's URL changes but not its pin (cassandra.agent.sha256): hosts whose jar matches the pin keep it and "
    "download nothing, and any other host refuses the new download unless it is that very jar (its installer fails); "
    "pin the new jar: curl -sL <url> | sha256sum"
)
CASSANDRA_UNSELECTED = (
    "hosts the new cassandra.nodeSelector no longer selects keep the Java agent installed: the installer's pods "
    "leave them without uninstalling (narrow the selector after a sync with spec.cassandra.state: absent)"
)


def _template_path(kind: str) -> tuple[str, ...]:
    return {"CronJob": ("spec", "jobTemplate", "spec", "template"), "Pod": ("spec",)}.get(kind, ("spec", "template"))


def _checksum_path(kind: str) -> tuple[str, ...]:
    return (*_template_path(kind), "metadata", "annotations", layout.CHECKSUM_ANNOTATION)


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        obj = (obj or {}).get(key)
    return obj


def _touches(f: FieldChange, prefix: tuple[str, ...]) -> bool:
    return f.path[: len(prefix)] == prefix


def _note(notes: list[str], note: str, change: ObjectChange | None, *, summary: bool = True) -> None:
    """Add note to the cluster's notes (unless not for the summary) and to the change that causes it, each once."""
    if change is not None and note not in change.impact:
        change.impact.append(note)
    if summary and note not in notes:
        notes.append(note)


def assess(comparison: Comparison, new_objects: Iterable[Mapping[str, Any]], unseen: Collection[str] = ()) -> list[str]:
    """Fill in every change's impact notes; return the cluster's notes, each once.

    `new_objects` are the working tree's built objects as kustomize made them
    (hashed names included), to find the pods that use a changed ConfigMap.
    `unseen`: the namespaces of the destination that the AppProject stops allowing.
    """
    workloads = [o for o in new_objects if o.get("kind") in WORKLOAD_KINDS]
    notes: list[str] = []
    by_key = {c.key: c for c in comparison.changes}
    _pruned_applications(comparison.changes, notes)
    _moved_applications(comparison.changes, notes)
    restarts = _restarts(comparison, workloads, notes)
    for obj in workloads:
        reasons = restarts.get(ident(obj))
        if not reasons:
            continue
        change = by_key.get(Key.of(obj))
        _note(notes, f"{ident(obj)}: pods restart ({'; '.join(reasons)})", change)
        if obj.get("kind") == "Deployment" and _dig(obj, "spec", "strategy", "type") == "Recreate":
            recreate = f"{ident(obj)} has strategy Recreate: none of its pods runs during the restart"
            _note(notes, SERVER_RECREATE if _dig(obj, "metadata", "name") == SERVER_DEPLOYMENT else recreate, change)
    _unseen_namespaces(comparison.changes, notes, unseen)
    _host_port_handovers(comparison.changes, notes, unseen)
    _immutable_selectors(comparison.changes, notes)
    _cassandra(comparison.changes, notes)
    _storage_upgrade(comparison.changes, notes)
    return notes


def _restarts(comparison: Comparison, workloads: list[Mapping[str, Any]], notes: list[str]) -> dict[str, list[str]]:
    """Why each of the new workloads' pods restart, by `Kind/name`."""
    out: dict[str, list[str]] = {}
    by_key = {c.key: c for c in comparison.changes if c.status == "changed"}

    def template_changes(workload: Mapping[str, Any]) -> list[FieldChange]:
        change = by_key.get(Key.of(workload))
        template = _template_path(str(workload.get("kind")))
        return [f for f in change.fields if _touches(f, template)] if change is not None else []

    for change in comparison.changes:
        if change.status != "changed":
            continue
        kind = change.key.kind
        template, checksum = _template_path(kind), _checksum_path(kind)
        # The config checksum changes with its ConfigMap, which is named as the reason instead.
        if kind in WORKLOAD_KINDS and any(_touches(f, template) and not _touches(f, checksum) for f in change.fields):
            out.setdefault(f"{kind}/{change.key.name}", []).append("the pod template changes")
        users = [w for w in workloads if references(w, [change.new_name or ""])] if kind in HASHED_KINDS else []
        if not users:
            continue
        names = ", ".join(ident(w) for w in users)
        if change.renamed:
            # The cluster's list names each restarting workload once, with all its reasons.
            _note(notes, f"pods restart: the {kind} hash changes ({names})", change, summary=False)
            for w in users:
                out.setdefault(ident(w), []).append(f"{kind} {change.key.name} hash changes")
            continue
        # Pods roll when their template changes: with the config's checksum, or for another reason.
        # Otherwise nothing tells them that their config changed (no hash suffix, or a checksum
        # the overlay did not bring up to date).
        for w in users:
            if any(_touches(f, _checksum_path(str(w.get("kind")))) for f in template_changes(w)):
                out.setdefault(ident(w), []).append(f"{kind} {change.key.name} changes")
        unaware = [w for w in users if not template_changes(w)]
        stale = ", ".join(ident(w) for w in unaware if _carries_checksum(w))
        if stale:
            why = f"their {layout.CHECKSUM_ANNOTATION} annotation does not change with the {kind}"
            _note(notes, f"{stale} do not restart by themselves: {why}", change)
        plain = ", ".join(ident(w) for w in unaware if not _carries_checksum(w))
        if plain:
            _note(notes, f"{plain} do not restart by themselves: the {kind} name has no hash suffix", change)
    return out


def _pod_spec(workload: Mapping[str, Any] | None) -> Any:
    kind = str((workload or {}).get("kind"))
    return _dig(workload, "spec") if kind == "Pod" else _dig(workload, *_template_path(kind), "spec")


def _host_ports(workload: Mapping[str, Any] | None) -> set[tuple[int, str]]:
    """The node ports a workload's pods hold: each hostPort, and with the host network every container port."""
    spec = _pod_spec(workload) or {}
    found = set()
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            # The API server gives a host-network pod's container ports a hostPort of the same number.
            number = port.get("hostPort") or (port.get("containerPort") if spec.get("hostNetwork") else None)
            if isinstance(number, int):
                found.add((number, str(port.get("protocol") or "TCP")))
    return found


def _host_port_handovers(changes: Sequence[ObjectChange], notes: list[str], unseen: Collection[str]) -> None:
    """A new workload whose pods need the host ports of one left in a namespace the AppProject no longer allows."""
    # Argo CD prunes a removed workload in its own wave or an earlier one, and waits for the deletion
    # before the next wave, so a workload it prunes hands its host ports over by itself; one it no
    # longer sees is never pruned, and the scheduler places no pod on a node where another holds its
    # host port.
    leaving = [
        c for c in changes if c.status == "removed" and c.key.kind in WORKLOAD_KINDS and c.key.namespace in unseen
    ]
    for change in (c for c in changes if c.status == "added" and c.key.kind in WORKLOAD_KINDS):
        for old in leaving:
            shared = sorted(_host_ports(change.new) & _host_ports(old.old))
            if not shared:
                continue
            ports = ", ".join(f"{n}/{proto}" for n, proto in shared)
            gone = f"{old.key.kind} {old.key.namespace}/{old.key.name}"
            _note(
                notes,
                f"{change.key.kind} {change.key.namespace}/{change.key.name} cannot start its pods while {gone} holds "
                f"host ports {ports}, and Argo CD never prunes it (the AppProject no longer allows namespace "
                f"{old.key.namespace}): the sync stalls; delete {gone} by hand once the new one exists",
                change,
            )


def _unseen_namespaces(changes: Sequence[ObjectChange], notes: list[str], unseen: Collection[str]) -> None:
    """Objects left in a namespace of the destination that the AppProject stops allowing: never pruned."""
    app = next((c for c in changes if c.key.kind == "Application"), None)
    for namespace in sorted(unseen):
        left = [c for c in changes if c.status == "removed" and c.key.namespace == namespace and c.old is not None]
        if not left:
            continue
        # Argo CD drops the live objects its project does not allow before it compares: they are no
        # longer the Application's, so no sync prunes them (and deleting the Application leaves them).
        kinds = ",".join(sorted({c.key.kind.lower() for c in left}))
        labels = {_dig(c.old, "metadata", "labels", "cluster") for c in left}
        select = f" -l cluster={next(iter(labels))}" if len(labels) == 1 and None not in labels else ""
        agent = any((c.key.kind, c.key.name) == ("DaemonSet", ebpf.DAEMONSET) for c in left)
        running = " (the old eBPF agent profiles every node a second time)" if agent else ""
        note = (
            f"the AppProject no longer allows namespace {namespace} on this destination, so Argo CD stops seeing "
            f"the {len(left)} object(s) the Application leaves there and never prunes them: they stay"
            f"{running}; delete them by hand: kubectl -n {namespace} delete {kinds}{select}"
        )
        _note(notes, note, app)


def _immutable_selectors(changes: Iterable[ObjectChange], notes: list[str]) -> None:
    for change in changes:
        # The API server refuses a new spec.selector on these kinds, to an apply and to Replace=true alike.
        if change.key.kind in SELECTOR_KINDS and any(_touches(f, ("spec", "selector")) for f in change.fields):
            note = (
                f"{change.key.kind}/{change.key.name}: its spec.selector cannot change in place: the API server "
                f"refuses the update and the sync fails; delete the {change.key.kind} by hand so that Argo CD "
                "creates it anew"
            )
            _note(notes, note, change)


def _carries_checksum(workload: Mapping[str, Any]) -> bool:
    *annotations, name = _checksum_path(str(workload.get("kind")))
    return name in (_dig(workload, *annotations) or {})


def _pruned_applications(changes: Iterable[ObjectChange], notes: list[str]) -> None:
    for change in changes:
        if change.status != "removed" or change.old is None:
            continue
        meta = change.old.get("metadata") or {}
        options = str((meta.get("annotations") or {}).get("argocd.argoproj.io/sync-options", ""))
        if "Delete=false" in options:
            why = "Delete=false, Prune=false" if "Prune=false" in options else "Delete=false"
            _note(notes, f"{change.key.kind} {change.key.name} stays: Argo CD never deletes it ({why})", change)
        if change.key.kind != "Application":
            continue
        if RESOURCES_FINALIZER in (meta.get("finalizers") or []):
            note = f"Application {change.key.name} is deleted: Argo CD prunes every resource it deployed"
        else:
            note = (
                f"Application {change.key.name} is deleted without the resources finalizer: "
                "its resources keep running, no longer managed"
            )
        _note(notes, note, change)


def applied_by_hand(changes: Iterable[ObjectChange], keys: Collection[Key], file: str, notes: list[str]) -> None:
    """Say of each change to one of keys, the objects of a file that Argo CD does not sync, that it waits for a hand."""
    for change in changes:
        if change.key in keys:
            note = (
                f"{change.key.kind} {change.key.name} comes from {file}, which Argo CD does not sync: "
                f"the change takes effect only once applied by hand (kubectl apply -f {file})"
            )
            _note(notes, note, change)


def _moved_applications(changes: Iterable[ObjectChange], notes: list[str]) -> None:
    for change in changes:
        if change.key.kind != "Application" or change.status != "changed":
            continue
        old, new = (" ".join(deploys_to(app)) for app in (change.old, change.new))
        if old != new:
            # Argo CD reads, prunes and (with the finalizer) deletes only on the current destination.
            note = (
                f"Application {change.key.name} now deploys to {new} instead of {old}: if that is another cluster, "
                "Argo CD leaves everything it deployed on the old one running there, no longer managed "
                "(never pruned, nor deleted with the Application); remove it there by hand"
            )
            _note(notes, note, change)


def _server_image(obj: Mapping[str, Any] | None) -> str | None:
    containers = _dig(_pod_spec(obj), "containers") or []
    return next((c.get("image") for c in containers if c.get("name") == "pyroscope"), None)


def _data_dir(obj: Mapping[str, Any] | None) -> str | None:
    """The host directory the server keeps its profiles in (volume `data` of base/server)."""
    volumes = _dig(_pod_spec(obj), "volumes") or []
    return next((_dig(v, "hostPath", "path") for v in volumes if v.get("name") == SERVER_DATA_VOLUME), None)


def _storage_upgrade(changes: Iterable[ObjectChange], notes: list[str]) -> None:
    for change in changes:
        if (change.key.kind, change.key.name, change.status) != ("Deployment", SERVER_DEPLOYMENT, "changed"):
            continue
        if server.crosses_to_v2(_server_image(change.old), _server_image(change.new)):
            _note(notes, server.STORAGE_NOT_MIGRATED, change)
        old, new = _data_dir(change.old), _data_dir(change.new)
        if old is not None and new is not None and old != new:
            note = (
                f"the server's data directory changes from {old} to {new}: it starts without the profiles stored "
                f"so far, which stay in {old} on the host, no longer served (nothing is copied)"
            )
            _note(notes, note, change)


def _installs(obj: Mapping[str, Any] | None) -> bool:
    """Whether a Cassandra agent DaemonSet installs the agent (rather than removing it)."""
    init = _dig(_pod_spec(obj), "initContainers") or []
    return obj is not None and all("uninstall" not in (c.get("args") or []) for c in init)


def _cassandra(changes: Sequence[ObjectChange], notes: list[str]) -> None:
    """What the change asks of Cassandra, from whether the agent is installed before and after, and with what.

    A stack that moves to another namespace is one DaemonSet removed and another added: the hosts keep
    the agent, and only changed settings need a restart.
    """
    daemonsets = [c for c in changes if (c.key.kind, c.key.name) == ("DaemonSet", cassandra.DAEMONSET)]
    configs = [c for c in changes if (c.key.kind, c.key.name) == ("ConfigMap", cassandra.CONFIG_MAP)]
    before = [c for c in daemonsets if c.old is not None and _installs(c.old)]
    after = [c for c in daemonsets if c.new is not None]
    installing = [c for c in after if _installs(c.new)]
    if daemonsets and not before:
        if installing:
            _note(notes, CASSANDRA_NEW, installing[0])
        return  # else the agent was not installed and is not now
    if before and not installing:
        if after:  # the installer now uninstalls: a running JVM keeps its agent until restarted
            _note(notes, CASSANDRA_UNINSTALL, after[0])
        else:
            for change in before:
                _note(notes, CASSANDRA_LEFT, change)
        return
    # A host leaves the DaemonSet when the new selector asks for a label the old one did not.
    if (
        before
        and not (_dig(_pod_spec(installing[0].new), "nodeSelector") or {}).items()
        <= (_dig(_pod_spec(before[0].old), "nodeSelector") or {}).items()
    ):
        _note(notes, CASSANDRA_UNSELECTED, installing[0])
    old = next((c.old for c in configs if c.old is not None), None)
    new = next((c for c in configs if c.new is not None), None)
    if old is None or new is None:
        return
    changed = {p for p in CASSANDRA_RESTART_PATHS if _dig(old, *p) != _dig(new.new, *p)}
    if (
        ("data", "AGENT_URL") in changed
        and ("data", "AGENT_SHA256") not in changed
        and _dig(old, "data", "AGENT_SHA256")
    ):
        # The installer keeps a jar that matches the pin, and refuses a download that does not.
        _note(notes, CASSANDRA_SAME_PIN, new)
        changed.discard(("data", "AGENT_URL"))
    if changed:
        _note(notes, CASSANDRA_RESTART, new)
