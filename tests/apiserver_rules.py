"""What the Kubernetes API server refuses in an object beyond its OpenAPI schema, for the kinds gen renders.

Each rule is the one kube-apiserver applies when it validates the object (kubernetes/kubernetes,
pkg/apis/core/validation, pkg/apis/apps/validation, pkg/apis/networking/validation and apimachinery's
name, label and annotation checks), restated for tests; plus Argo CD's own limits on an Application.
Restated here rather than taken from gen.spec.units: an oracle that shared gen's patterns would
pass gen's mistakes.
`problems(obj)` lists every rule an object breaks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_PORT_NAME = re.compile(r"[-a-z0-9]+")

ANNOTATIONS_MAX = 256 * 1024
CONFIG_MAP_MAX = 1024 * 1024
# The label Argo CD's label tracking writes the Application's name into.
ARGOCD_APP_NAME_MAX = 63


def dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(value) is not None


def dns1035_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1035_LABEL.fullmatch(value) is not None


def qualified_name(value: str) -> bool:
    prefix, slash, name = value.rpartition("/")
    if slash and not (prefix and dns1123_subdomain(prefix)):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def port_name(value: str) -> bool:
    """IANA_SVC_NAME: at most 15 of a-z, 0-9 and '-', a letter among them, no '-' at an end or twice in a row."""
    return (
        len(value) <= 15
        and _PORT_NAME.fullmatch(value) is not None
        and re.search("[a-z]", value) is not None
        and not value.startswith("-")
        and not value.endswith("-")
        and "--" not in value
    )


def config_map_key(value: str) -> bool:
    return len(value) <= 253 and _CONFIG_MAP_KEY.fullmatch(value) is not None and not value.startswith("..")


def _labels(labels: Any, where: str) -> Iterator[str]:
    for k, v in (labels or {}).items():
        if not qualified_name(str(k)):
            yield f"{where}: key {k!r} is not a qualified name"
        if not isinstance(v, str) or not label_value(v):
            yield f"{where}[{k}]: {v!r} is not a label value"


def _annotations(annotations: Any, where: str) -> Iterator[str]:
    size = 0
    for k, v in (annotations or {}).items():
        if not qualified_name(str(k).lower()):
            yield f"{where}: key {k!r} is not a qualified name"
        size += len(str(k).encode()) + len(str(v).encode())
    if size > ANNOTATIONS_MAX:
        yield f"{where}: {size} bytes, over {ANNOTATIONS_MAX}"


def _name(obj: dict[str, Any]) -> Iterator[str]:
    kind, name = obj.get("kind"), str(obj["metadata"].get("name", ""))
    if kind in ("Namespace",):
        ok = dns1123_label(name)
    elif kind == "Service":
        ok = dns1035_label(name)
    elif kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        ok = bool(name) and name not in (".", "..") and "/" not in name and "%" not in name
    else:
        ok = dns1123_subdomain(name)
    if not ok:
        yield f"metadata.name: {name!r} is not a valid {kind} name"
    namespace = obj["metadata"].get("namespace")
    if namespace is not None and not dns1123_label(str(namespace)):
        yield f"metadata.namespace: {namespace!r} is not a DNS-1123 label"


def _selector_matches(selector: Any, labels: Any) -> bool:
    match = (selector or {}).get("matchLabels") or {}
    return bool(match) and all((labels or {}).get(k) == v for k, v in match.items())


def _probe(probe: Any, where: str) -> Iterator[str]:
    if probe is None:
        return
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in probe]
    if len(handlers) != 1:
        yield f"{where}: {len(handlers)} handlers; exactly one is allowed"
    for h in ("httpGet", "tcpSocket"):
        port = (probe.get(h) or {}).get("port")
        if (isinstance(port, int) and not 1 <= port <= 65535) or (isinstance(port, str) and not port_name(port)):
            yield f"{where}.{h}.port: {port!r} is neither a port number nor an IANA_SVC_NAME"


def _pod_spec(spec: dict[str, Any], where: str) -> Iterator[str]:
    volumes = spec.get("volumes") or []
    names = [v["name"] for v in volumes]
    for v in volumes:
        if not dns1123_label(v["name"]):
            yield f"{where}.volumes[{v['name']}]: not a DNS-1123 label"
        if "hostPath" in v:
            path = v["hostPath"].get("path", "")
            if not path or ".." in path.split("/"):
                yield f"{where}.volumes[{v['name']}].hostPath.path: {path!r} is empty or backsteps"
        if "configMap" in v and not dns1123_subdomain(v["configMap"].get("name", "")):
            yield f"{where}.volumes[{v['name']}].configMap.name: not a valid ConfigMap name"
    if len(set(names)) != len(names):
        yield f"{where}.volumes: duplicate names {names}"
    yield from _labels(spec.get("nodeSelector"), f"{where}.nodeSelector")
    yield from _tolerations(spec.get("tolerations") or [], f"{where}.tolerations")
    if "hostname" in spec and not dns1123_label(spec["hostname"]):
        yield f"{where}.hostname: not a DNS-1123 label"
    init, regular = spec.get("initContainers") or [], spec.get("containers") or []
    container_names = [c["name"] for c in [*init, *regular]]
    if len(set(container_names)) != len(container_names):
        yield f"{where}: duplicate container names {container_names}"
    for c in [*init, *regular]:
        yield from _container(c, f"{where}.containers[{c['name']}]", names, bool(spec.get("hostNetwork")))
    # A host port (with its protocol) once among the regular containers; on the host network, every port is one.
    host_ports = [
        (p.get("hostPort") or (p["containerPort"] if spec.get("hostNetwork") else 0), p.get("protocol", "TCP"))
        for c in regular
        for p in c.get("ports") or []
    ]
    bound = [hp for hp in host_ports if hp[0]]
    if len(set(bound)) != len(bound):
        yield f"{where}: host ports bound twice {bound}"


def _container(c: dict[str, Any], at: str, volumes: list[str], host_network: bool) -> Iterator[str]:
    if not dns1123_label(c["name"]):
        yield f"{at}: name is not a DNS-1123 label"
    if not str(c.get("image", "")).strip() or c["image"] != c["image"].strip():
        yield f"{at}.image: empty or padded"
    port_names = [p["name"] for p in c.get("ports") or [] if "name" in p]
    yield from (f"{at}.ports[{n}]: not an IANA_SVC_NAME" for n in port_names if not port_name(n))
    if len(set(port_names)) != len(port_names):
        yield f"{at}.ports: duplicate names {port_names}"
    for p in c.get("ports") or []:
        if not 1 <= p["containerPort"] <= 65535 or not 0 <= p.get("hostPort", 0) <= 65535:
            yield f"{at}.ports: {p} out of range"
        if host_network and p.get("hostPort", p["containerPort"]) != p["containerPort"]:
            yield f"{at}.ports: hostPort must match containerPort with hostNetwork"
    mounts = [m["mountPath"] for m in c.get("volumeMounts") or []]
    if len(set(mounts)) != len(mounts):
        yield f"{at}.volumeMounts: duplicate mountPath {mounts}"
    yield from (
        f"{at}.volumeMounts[{m['name']}]: no such volume"
        for m in c.get("volumeMounts") or []
        if m["name"] not in volumes
    )
    for e in c.get("env") or []:
        if not _ENV_VAR_NAME.fullmatch(e["name"]):
            yield f"{at}.env[{e['name']}]: not a valid environment variable name"
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if ref is not None and not config_map_key(ref.get("key", "")):
            yield f"{at}.env[{e['name']}].configMapKeyRef.key: not a valid ConfigMap key"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        yield from _probe(c.get(probe), f"{at}.{probe}")
    sc = c.get("securityContext") or {}
    sys_admin = {"SYS_ADMIN", "CAP_SYS_ADMIN"} & set((sc.get("capabilities") or {}).get("add") or [])
    if sc.get("allowPrivilegeEscalation") is False and (sc.get("privileged") or sys_admin):
        yield f"{at}.securityContext: allowPrivilegeEscalation false with privileged or CAP_SYS_ADMIN"


def _tolerations(tolerations: list[dict[str, Any]], where: str) -> Iterator[str]:
    for i, t in enumerate(tolerations):
        at = f"{where}[{i}]"
        key, operator, value = t.get("key", ""), t.get("operator", "Equal"), t.get("value", "")
        if key and not qualified_name(key):
            yield f"{at}.key: {key!r} is not a qualified name"
        if not key and operator != "Exists":
            yield f"{at}.operator: must be Exists when key is empty"
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            yield f"{at}.effect: must be NoExecute when tolerationSeconds is set"
        if operator == "Exists" and value:
            yield f"{at}.value: must be empty with Exists"
        if operator == "Equal" and not label_value(value):
            yield f"{at}.value: {value!r} is not a label value"


def _workload(obj: dict[str, Any]) -> Iterator[str]:
    spec = obj["spec"]
    template = spec["template"]
    yield from _labels((spec.get("selector") or {}).get("matchLabels"), "spec.selector.matchLabels")
    yield from _labels(template["metadata"].get("labels"), "spec.template.metadata.labels")
    yield from _annotations(template["metadata"].get("annotations"), "spec.template.metadata.annotations")
    if not _selector_matches(spec.get("selector"), template["metadata"].get("labels")):
        yield "spec.selector: does not match the template's labels"
    yield from _pod_spec(template["spec"], "spec.template.spec")


def _service(obj: dict[str, Any]) -> Iterator[str]:
    ports = obj["spec"].get("ports") or []
    names = [p.get("name", "") for p in ports]
    if len(ports) > 1 and (not all(names) or len(set(names)) != len(names)):
        yield f"spec.ports: names {names} must be given and differ"
    for p in ports:
        if p.get("name") and not dns1123_label(p["name"]):
            yield f"spec.ports[{p['name']}]: not a DNS-1123 label"
        if not 1 <= p["port"] <= 65535:
            yield f"spec.ports: port {p['port']} out of range"
        target = p.get("targetPort")
        if isinstance(target, str) and not port_name(target):
            yield f"spec.ports: targetPort {target!r} is not an IANA_SVC_NAME"
    yield from _labels(obj["spec"].get("selector"), "spec.selector")


def _network_policy(obj: dict[str, Any]) -> Iterator[str]:
    spec = obj["spec"]
    yield from _labels((spec.get("podSelector") or {}).get("matchLabels"), "spec.podSelector")
    for rule in spec.get("ingress") or []:
        for peer in rule.get("from") or []:
            if "ipBlock" in peer and len(peer) > 1:
                yield "spec.ingress.from: ipBlock beside a selector in one peer"
            for sel in ("podSelector", "namespaceSelector"):
                yield from _labels((peer.get(sel) or {}).get("matchLabels"), f"spec.ingress.from.{sel}")
            if "ipBlock" in peer:
                cidr = peer["ipBlock"].get("cidr", "")
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    yield f"spec.ingress.from.ipBlock.cidr: {cidr!r} is not a CIDR"
        for port in rule.get("ports") or []:
            number = port.get("port")
            if isinstance(number, int) and not 1 <= number <= 65535:
                yield f"spec.ingress.ports: {number} out of range"


def _config_map(obj: dict[str, Any]) -> Iterator[str]:
    data = obj.get("data") or {}
    for key in data:
        if not config_map_key(key):
            yield f"data: key {key!r} is not a valid ConfigMap key"
    size = sum(len(str(v).encode()) for v in data.values())
    if size > CONFIG_MAP_MAX:
        yield f"data: {size} bytes, over {CONFIG_MAP_MAX}"


def _binding(obj: dict[str, Any]) -> Iterator[str]:
    for s in obj.get("subjects") or []:
        if s.get("kind") == "ServiceAccount" and not (s.get("namespace") and dns1123_subdomain(s["name"])):
            yield f"subjects[{s.get('name')}]: a ServiceAccount subject needs a namespace and a valid name"


def _application(obj: dict[str, Any]) -> Iterator[str]:
    # Argo CD's label tracking writes the Application's name into a label value on every object it deploys.
    name = obj["metadata"]["name"]
    if len(name) > ARGOCD_APP_NAME_MAX:
        yield f"metadata.name: {len(name)} characters; Argo CD's tracking label holds at most {ARGOCD_APP_NAME_MAX}"


_BY_KIND = {
    "Deployment": _workload,
    "DaemonSet": _workload,
    "Service": _service,
    "NetworkPolicy": _network_policy,
    "ConfigMap": _config_map,
    "ClusterRoleBinding": _binding,
    "Application": _application,
}


def problems(obj: dict[str, Any]) -> list[str]:
    """Every rule of the API server (and of Argo CD for an Application) that the object breaks."""
    meta = obj.get("metadata") or {}
    found = [
        *_name(obj),
        *_labels(meta.get("labels"), "metadata.labels"),
        *_annotations(meta.get("annotations"), "metadata.annotations"),
    ]
    check = _BY_KIND.get(str(obj.get("kind")))
    if check is not None:
        found += check(obj)
    return [f"{obj.get('kind')}/{meta.get('name')}: {p}" for p in found]
