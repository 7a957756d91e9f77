"""Security of what gen renders.

checkov over every example's built manifests (and a pod-network variant) with no
failed check; each exception named in the manifest with its reason and limited to
what the stack needs; the least-privilege eBPF agent; the server's NetworkPolicy;
the secret scan behind `gen validate`; shellcheck over every rendered script.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gen import yamlio
from gen.cli import cli
from gen.components.ebpf import CAPABILITIES, TRACEFS
from gen.spec.loader import load_clusters, load_text
from gen.validate import kustomize, secrets_scan
from tests.conftest import EXAMPLES, PROJECT, make_fleet, snapshot, write_spec
from tests.fleet_fixtures import render

SKIP_KEY = re.compile(r"^checkov\.io/skip(\d+|-[a-z-]+)$")
SKIP_VALUE = re.compile(r"^(?P<check>CKV2?_K8S_\d+)=(?P<reason>[^=]+)$")

# The only exceptions the stack may take, per workload and mode: each is something the
# stack physically needs (README, "Security"). Anything else must be fixed, not skipped.
# CKV_K8S_15 (imagePullPolicy Always): images are pinned, and a restart must not need the registry.
HOST_NETWORK_SERVER = {"CKV_K8S_19", "CKV2_K8S_6", "CKV_K8S_25", "CKV_K8S_43", "CKV_K8S_15"}
POD_NETWORK_SERVER = {"CKV_K8S_26", "CKV_K8S_25", "CKV_K8S_43", "CKV_K8S_15"}
EBPF_ALWAYS = {"CKV_K8S_17", "CKV_K8S_23", "CKV_K8S_40", "CKV_K8S_38", "CKV_K8S_43", "CKV_K8S_15"}
PRIVILEGED_EBPF = EBPF_ALWAYS | {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_37", "CKV_K8S_28"}
LEAST_PRIVILEGE_EBPF = EBPF_ALWAYS | {"CKV_K8S_25"}
INSTALLER = {"CKV_K8S_25"}
# On easy-db-lab every object lives in `default`, where easy-db-lab's own objects are taken over.
EASY_DB_LAB = {"CKV_K8S_21"}

# A cluster that also exercises the pod-network server, with Grafana and privileged eBPF.
POD_NETWORK = "lab-podnet"
POD_NETWORK_SPEC = """\
apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: lab-podnet
spec:
  platform: kubernetes
  controlNode:
    address: 10.0.1.10
  server:
    port: 4100
    hostNetwork: false
    allowFrom: [10.0.1.0/24, "fd00:10::/64"]
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: lab-podnet
"""
CASES = [*EXAMPLES, POD_NETWORK]


@pytest.fixture(scope="module")
def fleet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples plus the pod-network cluster, rendered."""
    root = make_fleet(tmp_path_factory.mktemp("security") / "fleet")
    write_spec(root, POD_NETWORK, POD_NETWORK_SPEC)
    result = CliRunner().invoke(cli, ["render", "--all", "--root", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def manifests(fleet_root: Path) -> dict[str, str]:
    """Each case's `kustomize build` output."""
    return {name: kustomize.build(fleet_root / "overlays" / name) for name in CASES}


def objects_of(text: str) -> list[dict[str, Any]]:
    return [o for o in yamlio.parse_all_plain(text) if isinstance(o, dict)]


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def skips_of(obj: dict[str, Any]) -> dict[str, str]:
    """check id → reason, from the object's checkov.io/skipN annotations."""
    out = {}
    for key, value in (obj["metadata"].get("annotations") or {}).items():
        if key.startswith("checkov.io/"):
            assert SKIP_KEY.match(key), f"{key}: checkov reads checkov.io/skip<N>"
            m = SKIP_VALUE.match(value)
            assert m, f"{key}: {value!r} is not CHECK_ID=reason (a reason must not contain '=')"
            assert m["check"] not in out, f"{m['check']} is skipped twice"
            out[m["check"]] = m["reason"].strip()
    return out


def allowed_skips(name: str, kind: str, obj_name: str, fleet_root: Path) -> set[str]:
    spec = next(c.cluster for c in load_clusters(fleet_root) if c.cluster.name == name).spec
    platform = EASY_DB_LAB if spec.platform == "easy-db-lab" else set()
    if (kind, obj_name) == ("Deployment", "pyroscope"):
        return platform | (HOST_NETWORK_SERVER if spec.server.host_network else POD_NETWORK_SERVER)
    if (kind, obj_name) == ("DaemonSet", "pyroscope-ebpf"):
        return platform | (PRIVILEGED_EBPF if spec.ebpf.privileged else LEAST_PRIVILEGE_EBPF)
    if (kind, obj_name) == ("DaemonSet", "pyroscope-cassandra-agent"):
        return platform | INSTALLER
    return platform


def containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pod = obj["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


WORKLOADS = ("Deployment", "DaemonSet")


# ------------------------------------------------------------------ checkov


def checkov_command() -> str:
    """checkov from $CHECKOV, .ci/run's own virtual environment, or PATH."""
    for candidate in (
        os.environ.get("CHECKOV"),
        str(PROJECT / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("checkov is not installed (.ci/run installs it into .venv-checkov; or set CHECKOV)")


@pytest.mark.parametrize("name", CASES)
def test_checkov_finds_no_failed_check(name: str, manifests: dict[str, str], tmp_path: Path) -> None:
    checkov = checkov_command()
    built = tmp_path / f"{name}.yaml"
    built.write_text(manifests[name], encoding="utf-8")
    # --skip-download: the bundled checks only, no call to the vendor's platform.
    proc = subprocess.run(
        [checkov, "-f", str(built), "--framework", "kubernetes", "--skip-download", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    summary, results = report["summary"], report["results"]
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]]
    assert summary["failed"] == 0 and not failed, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100, "checkov checked next to nothing: were the manifests read?"
    assert proc.returncode == 0
    # Every skip checkov applied came with the reason written next to it.
    objs = objects_of(manifests[name])
    for check in results["skipped_checks"]:
        comment = check["check_result"].get("suppress_comment", "")
        assert comment and comment != "No comment provided", check["check_id"]
        kind, _, rest = check["resource"].partition(".")
        obj_name = rest.split(".")[1] if kind == "Pod" else rest.split(".", 1)[1]
        # A graph check reports the pod of a workload, and reads the workload's annotations.
        kinds = WORKLOADS if kind == "Pod" else (kind,)
        owner = next(o for o in objs if o["metadata"]["name"] == obj_name and o["kind"] in kinds)
        assert skips_of(owner)[check["check_id"]] == comment.strip()


@pytest.mark.parametrize("name", CASES)
def test_every_skip_names_a_check_and_a_reason_and_only_what_the_stack_needs(
    name: str, manifests: dict[str, str], fleet_root: Path
) -> None:
    for obj in objects_of(manifests[name]):
        skips = skips_of(obj)
        for check, reason in skips.items():
            assert len(reason) >= 20, f"{obj['kind']}/{obj['metadata']['name']}: {check} has no real reason"
        allowed = allowed_skips(name, obj["kind"], obj["metadata"]["name"], fleet_root)
        assert set(skips) <= allowed, f"{obj['kind']}/{obj['metadata']['name']}: {set(skips) - allowed}"


@pytest.mark.parametrize("name", CASES)
def test_the_helper_images_are_pinned_by_digest(name: str, manifests: dict[str, str]) -> None:
    """Only the spec's own images (grafana/*) may come by tag, and carry the digest skip for it."""
    for obj in objects_of(manifests[name]):
        if obj["kind"] in WORKLOADS:
            for c in containers(obj):
                if not c["image"].startswith("grafana/"):
                    assert re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", c["image"]), c["image"]


# ------------------------------------------------------------------ what checkov checks, without it


@pytest.mark.parametrize("name", CASES)
def test_every_container_is_pinned_limited_and_locked_down(name: str, manifests: dict[str, str]) -> None:
    for obj in objects_of(manifests[name]):
        if obj["kind"] not in WORKLOADS:
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        is_ebpf = obj["metadata"]["name"] == "pyroscope-ebpf"
        assert pod["automountServiceAccountToken"] is is_ebpf, "only pod discovery needs a token"
        for c in containers(obj):
            where = f"{obj['metadata']['name']}/{c['name']}"
            # Pinned images come from the node's cache: a restart must not need the registry.
            assert c.get("imagePullPolicy") == "IfNotPresent", where
            assert not c["image"].endswith(":latest"), where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), where
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            if sc.get("privileged"):
                assert is_ebpf, where
            else:
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["capabilities"]["drop"] == ["ALL"], where
        for c in pod["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, f"{obj['metadata']['name']}/{c['name']}"


def test_least_privilege_ebpf_holds_the_documented_capabilities_and_nothing_more(manifests: dict[str, str]) -> None:
    """lab-tuned sets ebpf.privileged: false (domain reference; Alloy's pyroscope.ebpf docs)."""
    ds = find(objects_of(manifests["lab-tuned"]), "DaemonSet", "pyroscope-ebpf")
    pod = ds["spec"]["template"]["spec"]
    alloy = pod["containers"][0]
    sc = alloy["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": CAPABILITIES}
    documented = {"BPF", "PERFMON", "SYS_PTRACE", "CHECKPOINT_RESTORE", "SYS_RESOURCE", "DAC_READ_SEARCH", "SYSLOG"}
    assert set(CAPABILITIES) == documented and "SYS_ADMIN" not in CAPABILITIES
    assert sc["runAsUser"] == 0, "pyroscope.ebpf runs only as root"
    assert pod["hostPID"] is True
    mount = next(m for m in alloy["volumeMounts"] if m["mountPath"] == TRACEFS)
    assert mount["readOnly"] is True
    assert any(v.get("hostPath", {}).get("path") == TRACEFS for v in pod["volumes"])
    assert any(m["mountPath"] == "/tmp/symb-cache" for m in alloy["volumeMounts"])


def test_privileged_ebpf_is_the_default(manifests: dict[str, str]) -> None:
    ds = find(objects_of(manifests["lab-minimal"]), "DaemonSet", "pyroscope-ebpf")
    assert ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] is True


# ------------------------------------------------------------------ who reaches what


@pytest.mark.parametrize("name", CASES)
def test_nothing_may_connect_to_the_agents(name: str, manifests: dict[str, str]) -> None:
    objs = objects_of(manifests[name])
    for workload in ("pyroscope-ebpf", "pyroscope-cassandra-agent"):
        ds = find(objs, "DaemonSet", workload)
        policy = find(objs, "NetworkPolicy", workload)
        assert policy["spec"]["podSelector"]["matchLabels"] == ds["spec"]["selector"]["matchLabels"]
        assert policy["spec"]["policyTypes"] == ["Ingress"] and not policy["spec"].get("ingress")


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_host_network_server_gets_no_network_policy_that_could_not_apply(
    name: str, manifests: dict[str, str]
) -> None:
    objs = objects_of(manifests[name])
    assert find(objs, "Deployment", "pyroscope")["spec"]["template"]["spec"]["hostNetwork"] is True
    assert not [o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "pyroscope"]


@pytest.mark.parametrize(
    ("server", "ports"),
    [
        ("hostNetwork: false\n    allowFrom: [10.0.1.0/24]", {"http": 4100}),
        ("image: grafana/pyroscope:2.2.1", {"http": 4100, "grpc": 9095, "memberlist": 7947, "raft": 9099}),
        # 1.x has no raft listener, so its port is free for gRPC.
        ("image: grafana/pyroscope:1.21.1\n    grpcPort: 9099", {"http": 4100, "grpc": 9099, "memberlist": 7947}),
    ],
)
def test_the_server_host_ports_are_what_it_binds_on_the_node(server: str, ports: dict[str, int]) -> None:
    text = POD_NETWORK_SPEC.replace('hostNetwork: false\n    allowFrom: [10.0.1.0/24, "fd00:10::/64"]', server)
    cluster = load_text(text.encode(), "clusters/lab-podnet.yaml", "lab-podnet").cluster
    assert cluster.spec.server.node_ports == ports


def test_a_pod_network_server_binds_only_its_http_port_and_admits_only_what_needs_it(
    manifests: dict[str, str],
) -> None:
    objs = objects_of(manifests[POD_NETWORK])
    deployment = find(objs, "Deployment", "pyroscope")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is False and pod["dnsPolicy"] == "ClusterFirst"
    assert pod["hostname"], "a fixed host name keeps the server's ring identity across restarts"
    # The other listeners are declared too, but only inside the pod: no hostPort.
    ports = {p["name"]: p for p in pod["containers"][0]["ports"]}
    assert ports["http"] == {"name": "http", "containerPort": 4100, "hostPort": 4100}
    assert set(ports) == {"http", "grpc", "memberlist", "raft"}
    assert [n for n, p in ports.items() if "hostPort" in p] == ["http"]
    policy = find(objs, "NetworkPolicy", "pyroscope")
    assert policy["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert policy["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 4100}]
    alloy = find(objs, "DaemonSet", "pyroscope-ebpf")["spec"]["selector"]["matchLabels"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": alloy}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"ipBlock": {"cidr": "10.0.1.0/24"}},
        {"ipBlock": {"cidr": "fd00:10::/64"}},
    ]


@pytest.mark.parametrize(
    ("server", "error"),
    [
        (
            "hostNetwork: false",
            "spec.server: hostNetwork: false needs allowFrom, the CIDRs of the hosts that send profiles or query "
            "the server (e.g. [10.0.1.0/24])",
        ),
        (
            "allowFrom: [10.0.1.0/24]",
            "spec.server: allowFrom needs hostNetwork: false (a NetworkPolicy does not apply to a host-network "
            "server; restrict its ports with host firewall rules instead)",
        ),
        ("hostNetwork: false\n    allowFrom: [10.0.1.7]", "spec.server.allowFrom.0: write '10.0.1.7/32'"),
        (
            "hostNetwork: false\n    allowFrom: [10.0.1.5/24]",
            "spec.server.allowFrom.0: '10.0.1.5/24' is not a network in CIDR form (e.g. 10.0.1.0/24): "
            "10.0.1.5/24 has host bits set",
        ),
    ],
)
def test_reachability_settings_the_server_cannot_honour_are_errors(fleet: Path, server: str, error: str) -> None:
    text = POD_NETWORK_SPEC.replace("lab-podnet", "lab-bad").replace(
        '    hostNetwork: false\n    allowFrom: [10.0.1.0/24, "fd00:10::/64"]\n', f"    {server}\n"
    )
    write_spec(fleet, "lab-bad", text)
    before = snapshot(fleet)
    result = CliRunner().invoke(cli, ["render", "lab-bad", "--root", str(fleet)])
    assert result.exit_code == 2
    assert error in result.output
    assert snapshot(fleet) == before


# ------------------------------------------------------------------ secret values


@pytest.mark.parametrize(
    "text",
    [
        "password: hunter2",
        '"client_secret": "s3cr3t"',
        "PGPASSWORD=hunter2",
        'api_key = "abc123"',
        "PYROSCOPE_AUTH_TOKEN=abc123",
        "PYROSCOPE_BASIC_AUTH_PASSWORD='abc123'",
        'JVM_EXTRA_OPTS="$JVM_EXTRA_OPTS -Dpyroscope.basic.auth.password=hunter2"',
        "-Dpyroscope.auth.token=glc_abc123",
        "-Dpyroscope.tenant.id=team-a",
        "Authorization: Basic dXNlcjpodW50ZXIy",
        'curl -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"',
        "url = https://user:hunter2@pyroscope.example:4040",
        "https://repo.example/agent.jar?token=abc123",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----",
        "aws_access_key_id AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_literal_credentials_in_text_are_found(text: str) -> None:
    found = secrets_scan.scan_text(f"first line\n{text}\n")
    assert found and all(line == 2 for line, _ in found), found


@pytest.mark.parametrize(
    "text",
    [
        "password: ${PYROSCOPE_PASSWORD}",
        "PGPASSWORD=$(cat /etc/pyroscope/password)",
        'password = sys.env("PYROSCOPE_PASSWORD")',
        "password = local.file.pyroscope.content",
        "-Dpyroscope.auth.token=$PYROSCOPE_AUTH_TOKEN",
        'JVM_EXTRA_OPTS="$JVM_EXTRA_OPTS -Dpyroscope.auth.token=${TOKEN}"',
        "password_file: /etc/pyroscope/password",
        "bearer_token_file: /var/run/secrets/token",
        "secretName: pyroscope-auth",
        "token: ''",
        "AGENT_SHA256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "url = http://10.0.1.10:4040",
        "git@github.com:acme/profiling-gitops.git",
        "# the auth token comes from the Secret",
    ],
)
def test_references_and_ordinary_text_are_not_findings(text: str) -> None:
    assert secrets_scan.scan_text(text) == []


def test_a_secret_with_values_and_credential_fields_are_found_without_repeating_the_value() -> None:
    objects = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth"}, "stringData": {"token": "v4lue-1"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "empty"}, "type": "Opaque"},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"API_KEY": "v4lue-2"}},
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "d"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "env": [
                                    {"name": "PYROSCOPE_BASIC_AUTH_PASSWORD", "value": "v4lue-3"},
                                    {"name": "PYROSCOPE_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": "a"}}},
                                    {"name": "PYROSCOPE_SERVER_ADDRESS", "value": "http://10.0.1.10:4040"},
                                ],
                                "args": ["-Dpyroscope.auth.token=v4lue-4"],
                            }
                        ]
                    }
                }
            },
        },
    ]
    found = secrets_scan.scan_objects(objects)
    assert [f.split(":")[0] for f in found] == ["Secret/auth", "ConfigMap/c", "DaemonSet/d", "DaemonSet/d"]
    assert "spec.template.spec.containers[0].env[0].value" in found[2]
    assert "spec.template.spec.containers[0].args[0]" in found[3]
    assert not any("v4lue" in f for f in found), "a finding must never repeat the value"


@pytest.mark.parametrize("name", CASES)
def test_the_rendered_stack_holds_no_secret_value(name: str, manifests: dict[str, str]) -> None:
    assert secrets_scan.scan_objects(objects_of(manifests[name])) == []


def test_validate_fails_on_a_committed_secret_value(fleet: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["render", "lab-minimal", "--root", str(fleet)]).exit_code == 0
    overlay = fleet / "overlays" / "lab-minimal"
    (overlay / "leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pyroscope-auth\nstringData:\n  password: hunter2\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: jvm\n"
        "data:\n  JVM_EXTRA_OPTS: -Dpyroscope.auth.token=hunter2\n",
        encoding="utf-8",
    )
    kustomization = overlay / "kustomization.yaml"
    text = kustomization.read_text()
    assert "\nresources:" not in text, "an easy-db-lab overlay creates no namespace"
    kustomization.write_text(
        text.replace("\nkind: Kustomization\n", "\nkind: Kustomization\nresources:\n- leak.yaml\n", 1)
    )
    result = runner.invoke(cli, ["validate", "lab-minimal", "--root", str(fleet)])
    assert result.exit_code == 1, result.output
    assert "overlays/lab-minimal: Secret/pyroscope-auth: stringData: a Secret with values" in result.output
    assert "overlays/lab-minimal: ConfigMap/jvm: data.JVM_EXTRA_OPTS: a literal value for -Dpyroscope.auth.token" in (
        result.output
    )
    assert "hunter2" not in result.output


# ------------------------------------------------------------------ shell


def shell_scripts(examples: Path) -> Iterator[tuple[str, str]]:
    """(where, script) for the installer, every shell script gen renders and every `sh -c` in the built pods."""
    yield "base/cassandra-agent/install.sh", (PROJECT / "base/cassandra-agent/install.sh").read_text(encoding="utf-8")
    for rel, text in render(examples).all_files().items():
        if rel.endswith(".sh"):
            yield rel, text
    for name in EXAMPLES:
        for obj in objects_of(kustomize.build(examples / "overlays" / name)):
            if obj["kind"] in WORKLOADS:
                for c in containers(obj):
                    command = [*c.get("command", []), *c.get("args", [])]
                    if command[:2] == ["sh", "-c"]:
                        yield f"{name}: {obj['metadata']['name']}/{c['name']}", command[2]


def test_every_rendered_shell_script_is_shellcheck_clean(examples: Path) -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (.ci/run installs it)")
    scripts = list(shell_scripts(examples))
    assert len(scripts) >= 5
    for where, script in scripts:
        proc = subprocess.run(
            ["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{where}:\n{proc.stdout}"
