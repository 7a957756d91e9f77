"""Fleet features: shared defaults with provenance, explain, new, schema and list."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from gen import yamlio
from gen.cli import cli
from tests.conftest import FIXTURES, PROJECT, snapshot, write_spec

DEFAULTS = """apiVersion: gen.profiling/v1alpha1
kind: Defaults
spec:
  server:
    retention: 72h
  cassandra:
    nodeSelector:
      type: cassandra
    labels:
      team: storage
      env: lab
"""


def _gen(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_defaults_merge_under_every_cluster(fleet: Path) -> None:
    (fleet / "clusters" / "_defaults.yaml").write_text(DEFAULTS)
    # lab-tuned sets its own labels (a mapping: merged) and nodeSelector (merged too).
    code, out, err = _gen("explain", "lab-tuned", "cassandra.labels", "--root", str(fleet), "--format", "json")
    assert code == 0, err
    rows = {r["field"]: (r["value"], r["from"]) for r in json.loads(out)}
    tuned = (fleet / "clusters" / "lab-tuned.yaml").read_text().splitlines()

    def line_of(text: str) -> str:
        return f"clusters/lab-tuned.yaml:{tuned.index(text) + 1}"

    assert rows == {
        "spec.cassandra.labels.team": ("storage", "clusters/_defaults.yaml:10"),
        "spec.cassandra.labels.env": ("lab", "clusters/_defaults.yaml:11"),
        "spec.cassandra.labels.dc": ("us-east-1", line_of("      dc: us-east-1")),
        "spec.cassandra.labels.rack": ("rack1", line_of("      rack: rack1")),
    }
    code, out, _ = _gen("explain", "lab-minimal", "server.retention", "--root", str(fleet))
    assert out.split() == ["spec.server.retention", '"72h"', "(clusters/_defaults.yaml:5)"]
    code, out, _ = _gen("explain", "lab-tuned", "server.retention", "--root", str(fleet))
    assert out.split() == ["spec.server.retention", '"72h"', f"({line_of('    retention: 72h')})"]


def test_lists_and_scalars_in_the_cluster_replace_the_default(fleet: Path) -> None:
    (fleet / "clusters" / "_defaults.yaml").write_text(
        DEFAULTS + "    tolerations:\n    - operator: Exists\n  ebpf:\n    sampleRate: 19\n"
    )
    _, out, _ = _gen("explain", "lab-tuned", "--root", str(fleet), "--format", "json")
    rows = {r["field"]: r["value"] for r in json.loads(out)}
    assert rows["spec.cassandra.tolerations"] == [
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "cassandra",
            "effect": "NoSchedule",
            "tolerationSeconds": None,
        }
    ]
    assert rows["spec.ebpf.sampleRate"] == 49
    _code, out, _ = _gen("explain", "lab-minimal", "--root", str(fleet), "--format", "json")
    rows = {r["field"]: r["value"] for r in json.loads(out)}
    assert rows["spec.ebpf.sampleRate"] == 19
    assert rows["spec.cassandra.tolerations"] == [
        {"key": None, "operator": "Exists", "value": None, "effect": None, "tolerationSeconds": None}
    ]


def test_a_destination_in_the_cluster_replaces_the_default_destination_whole(fleet: Path) -> None:
    # lab-tuned names its destination; the default gives a server: one of the two, never both.
    (fleet / "clusters" / "_defaults.yaml").write_text(
        "apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  argocd:\n    destination:\n"
        "      server: https://kubernetes.default.svc\n"
    )
    code, out, err = _gen("explain", "lab-tuned", "argocd.destination", "--root", str(fleet), "--format", "json")
    assert code == 0, err
    rows = {r["field"]: (r["value"], r["from"].split(":")[0]) for r in json.loads(out)}
    assert rows == {
        "spec.argocd.destination.name": ("lab-tuned", "clusters/lab-tuned.yaml"),
        "spec.argocd.destination.server": (None, "built-in default"),
    }


def test_an_error_in_the_defaults_points_at_the_defaults_file_once(fleet: Path) -> None:
    (fleet / "clusters" / "_defaults.yaml").write_text(DEFAULTS.replace("retention: 72h", "retention: 3d"))
    before = snapshot(fleet)
    code, _, err = _gen("render", "--all", "--root", str(fleet))
    assert code == 2
    # lab-tuned sets its own retention, so only lab-minimal inherits the bad value: one line.
    assert err.strip().splitlines() == [
        "clusters/_defaults.yaml:5:16: error: spec.server.retention: must be a duration in h, m and s, "
        "largest first (e.g. 168h, 36h30m; 0 keeps forever)"
    ]
    assert snapshot(fleet) == before
    (fleet / "clusters" / "_defaults.yaml").write_text(DEFAULTS.replace("  server:", "  sever:"))
    code, _, err = _gen("render", "--all", "--root", str(fleet))
    assert err.strip().splitlines() == [
        "clusters/_defaults.yaml:4:3: error: spec.sever: unknown field; did you mean 'server'?"
    ]


def _bare(name: str, spec: str = "") -> str:
    """A spec with its address and what the test gives, inheriting the rest."""
    head = f"apiVersion: gen.profiling/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n"
    return head + "  controlNode:\n    address: 10.0.1.10\n" + spec


def test_what_a_cluster_lacks_is_reported_in_its_own_file_though_the_defaults_hold_the_section(fleet: Path) -> None:
    repo = "    repoURL: https://github.com/acme/profiling-gitops.git\n"
    (fleet / "clusters" / "_defaults.yaml").write_text(DEFAULTS + "  argocd:\n" + repo)
    write_spec(fleet, "lab-a", _bare("lab-a"))
    write_spec(fleet, "lab-b", _bare("lab-b"))
    code, _, err = _gen("render", "--all", "--root", str(fleet))
    assert code == 2
    # Each cluster is named, in its own file: not one line in the defaults standing for both.
    assert err.strip().splitlines() == [
        "clusters/lab-a.yaml:5:1: error: spec.argocd.destination: required field is missing",
        "clusters/lab-b.yaml:5:1: error: spec.argocd.destination: required field is missing",
    ]


def test_a_warning_about_an_inherited_value_is_shown_once_and_one_about_each_cluster_in_its_file(
    fleet: Path,
) -> None:
    defaults = DEFAULTS.replace("retention: 72h", "retention: 72h\n    port: 4100")
    (fleet / "clusters" / "_defaults.yaml").write_text(defaults)
    argocd = "  argocd:\n    repoURL: https://github.com/acme/profiling-gitops.git\n"
    argocd += "    destination:\n      name: lab-a\n"
    write_spec(fleet, "lab-a", _bare("lab-a", argocd))
    code, _, err = _gen("render", "--all", "--root", str(fleet))
    assert code == 0, err
    warnings = err.strip().splitlines()
    # Two clusters on platform easy-db-lab inherit the port, a warning there: one line, in the defaults.
    assert [w for w in warnings if "spec.server.port" in w] == [
        "clusters/_defaults.yaml:6:11: warning: spec.server.port: easy-db-lab's Grafana keeps its datasource at "
        "http://localhost:4040, which gen leaves alone: it finds no server on port 4100, and easy-db-lab's other "
        "agents (its Cassandra sidecar, Spark, Presto and Trino) send to port 4040 too; and easy-db-lab's next up "
        "fails on the Service, adding its own port 4040 named http beside this one"
    ]
    # Neither pins the jar: each is told in its own file, though the defaults hold a cassandra section.
    assert [w.split(":")[0] for w in warnings if "sha256" in w] == [
        "clusters/lab-a.yaml",
        "clusters/lab-minimal.yaml",
        "clusters/lab-tuned.yaml",
    ]


def test_a_defaults_file_that_does_not_load_is_the_only_problem_reported(fleet: Path) -> None:
    # Both clusters take their repository from the defaults: read without them, each would lack it.
    repo = "  argocd:\n    repoURL: https://github.com/acme/profiling-gitops.git\n"
    for name in ("lab-a", "lab-b"):
        write_spec(fleet, name, _bare(name, f"  argocd:\n    destination:\n      name: {name}\n"))
    (fleet / "clusters" / "_defaults.yaml").write_text((DEFAULTS + repo).replace("kind: Defaults", "kind: Cluster"))
    code, _, err = _gen("render", "--all", "--root", str(fleet))
    assert (code, err.strip().splitlines()) == (
        2,
        ["clusters/_defaults.yaml:2:7: error: kind: must be 'Defaults', got string 'Cluster'"],
    )


def test_every_cluster_s_problem_is_reported_in_one_run_whatever_the_number_of_jobs(fleet: Path) -> None:
    minimal = (fleet / "clusters" / "lab-minimal.yaml").read_text()
    (fleet / "clusters" / "lab-minimal.yaml").write_text(minimal.replace("spec:\n", "spec:\n  bogus: 1\n"))
    tuned = fleet / "clusters" / "lab-tuned.yaml"
    tuned.write_text(tuned.read_text().replace("namespace: profiling-lab", "namespace: argocd"))
    for jobs in ("1", "2"):
        code, _, err = _gen("render", "--all", "--jobs", jobs, "--root", str(fleet))
        assert code == 2
        assert [line.split(": error: ")[1].split(":")[0] for line in err.strip().splitlines()] == [
            "spec.bogus",
            "spec.namespace",
        ]


def test_a_defaults_file_named_yml_is_refused_rather_than_ignored(fleet: Path) -> None:
    (fleet / "clusters" / "_defaults.yml").write_text(DEFAULTS)
    code, _, err = _gen("render", "--all", "--root", str(fleet))
    assert (code, err.strip()) == (
        2,
        "clusters/_defaults.yml:1:1: error: gen reads the fleet's defaults from clusters/_defaults.yaml: rename it",
    )


def test_without_fleet_yaml_a_repository_from_the_defaults_is_named_where_it_is_written(fleet: Path) -> None:
    (fleet / "fleet.yaml").unlink()
    other = "https://github.com/acme/other.git"
    (fleet / "clusters" / "_defaults.yaml").write_text(DEFAULTS + f"  argocd:\n    repoURL: {other}\n")
    write_spec(fleet, "lab-a", _bare("lab-a", "  argocd:\n    destination:\n      name: lab-a\n"))
    code, _, err = _gen("render", "--all", "--root", str(fleet))
    assert code == 2
    # lab-a, the first spec, inherits the repository: the others are told where that one is written.
    assert f"differs from {other!r} in clusters/_defaults.yaml; without fleet.yaml" in err.splitlines()[0]
    assert err.startswith("clusters/lab-minimal.yaml:")


def test_a_fleet_or_defaults_file_of_another_gen_version_is_named_as_such(fleet: Path) -> None:
    wanted = "version 'gen.profiling/v9' is not supported (this gen reads gen.profiling/v1alpha1)"
    for rel, line in (("fleet.yaml", 2), ("clusters/_defaults.yaml", 1)):
        path = fleet / rel
        original = path.read_text() if path.exists() else DEFAULTS
        path.write_text(original.replace("gen.profiling/v1alpha1", "gen.profiling/v9"))
        code, _, err = _gen("render", "--all", "--root", str(fleet))
        assert (code, err.strip().splitlines()) == (2, [f"{rel}:{line}:13: error: apiVersion: {wanted}"])
        path.write_text(original)


def test_changing_the_defaults_re_renders_the_affected_clusters(fleet: Path) -> None:
    assert _gen("render", "--all", "--root", str(fleet))[0] == 0
    (fleet / "clusters" / "_defaults.yaml").write_text(DEFAULTS)
    code, out, _ = _gen("render", "--all", "--root", str(fleet))
    assert code == 0
    changed = {line.split()[1] for line in out.splitlines() if line.startswith("changed ")}
    assert "overlays/lab-minimal/config.yaml" in changed  # retention comes from the defaults
    assert "overlays/lab-tuned/config.yaml" not in changed  # it sets its own retention
    assert "overlays/lab-tuned/cassandra-pyroscope.sh" in changed  # new labels


def test_explain_names_built_in_defaults_and_refuses_unknown_fields(fleet: Path) -> None:
    code, out, _ = _gen("explain", "lab-minimal", "server.image", "--root", str(fleet))
    assert out.split() == ["spec.server.image", '"grafana/pyroscope:2.2.1"', "(built-in", "default)"]
    code, _, err = _gen("explain", "lab-minimal", "sever", "--root", str(fleet))
    assert code == 2
    assert err.strip() == "error: no field 'sever' in the spec; did you mean 'spec.server'?"


def test_new_scaffolds_a_spec_that_renders(fleet: Path) -> None:
    code, _out, err = _gen(
        "new",
        "lab-west",
        "--address",
        "10.9.0.1",
        "--repo-url",
        "https://github.com/acme/profiling-gitops.git",
        "--root",
        str(fleet),
    )
    assert code == 0, err
    text = (fleet / "clusters" / "lab-west.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/cluster.schema.json\n")
    assert "#   sampleRate: 97\n" in text
    assert _gen("render", "lab-west", "--root", str(fleet))[0] == 0
    assert (fleet / "overlays" / "lab-west" / "kustomization.yaml").is_file()
    again = _gen(
        "new", "lab-west", "--address", "10.9.0.1", "--repo-url", "https://a.example/b.git", "--root", str(fleet)
    )
    assert again[0] == 2 and again[2].strip() == "error: clusters/lab-west.yaml already exists"


def test_new_refuses_bad_input_without_writing(fleet: Path) -> None:
    before = snapshot(fleet)
    code, _, err = _gen(
        "new", "../escape", "--address", "10.9.0.1", "--repo-url", "https://a.example/b.git", "--root", str(fleet)
    )
    assert code == 2 and "is not a cluster name" in err
    code, _, err = _gen(
        "new", "lab-x", "--address", "not an address", "--repo-url", "https://a.example/b.git", "--root", str(fleet)
    )
    assert code == 2
    assert (
        err.strip() == "clusters/lab-x.yaml:10:14: error: spec.controlNode.address: "
        "'not an address' is not an IP address or DNS name"
    )
    # A repository fleet.yaml does not allow: the render that `new` points to next would refuse it.
    other = "https://a.example/b.git"
    code, _, err = _gen("new", "lab-x", "--address", "10.9.0.1", "--repo-url", other, "--root", str(fleet))
    assert code == 2
    assert err.startswith("clusters/lab-x.yaml:") and f"spec.argocd.repoURL: {other!r} is not among" in err
    assert snapshot(fleet) == before


def test_schema_validates_the_examples_and_is_committed() -> None:
    _code, out, _ = _gen("schema")
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted((FIXTURES / "clusters").glob("*.yaml")):
        jsonschema.validate(yamlio.parse_plain(path.read_text()), schema)
    bad = yamlio.parse_plain((FIXTURES / "clusters" / "lab-minimal.yaml").read_text())
    bad["spec"]["sever"] = {}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    assert (PROJECT / "schema" / "cluster.schema.json").read_text() == out


def test_list_shows_status_components_and_destination(fleet: Path) -> None:
    assert _gen("render", "--all", "--root", str(fleet))[0] == 0
    write_spec(
        fleet,
        "lab-new",
        (fleet / "clusters" / "lab-minimal.yaml")
        .read_text()
        .replace("lab-minimal", "lab-new")
        .replace("server: https://kubernetes.default.svc", "name: lab-new"),
    )
    (fleet / "overlays" / "lab-gone").mkdir()
    (fleet / "overlays" / "lab-gone" / "kustomization.yaml").write_text(
        "# Generated by gen from clusters/lab-gone.yaml. Do not edit.\n"
    )
    code, out, _ = _gen("list", "--root", str(fleet), "--format", "json")
    assert code == 0
    table = {r["name"]: r for r in json.loads(out)}
    assert table["lab-minimal"]["status"] == "in sync"
    assert table["lab-new"]["status"] == "stale"
    assert table["lab-gone"]["status"] == "orphan"
    assert table["lab-tuned"]["components"] == ["server", "ebpf", "grafana", "cassandra"]
    assert table["lab-minimal"]["components"] == ["server", "ebpf", "cassandra"]  # easy-db-lab: Grafana left alone
    assert table["lab-tuned"]["destination"] == {"name": "lab-tuned"}
    code, out, _ = _gen("list", "--root", str(fleet))
    assert out.splitlines()[0].split() == ["CLUSTER", "STATUS", "COMPONENTS", "DESTINATION"]


def test_list_shows_every_cluster_when_one_spec_is_invalid(fleet: Path) -> None:
    assert _gen("render", "--all", "--root", str(fleet))[0] == 0
    write_spec(
        fleet,
        "lab-broken",
        (fleet / "clusters" / "lab-minimal.yaml")
        .read_text()
        .replace("lab-minimal", "lab-broken")
        .replace("address: 10.0.1.10", "address: [1]"),
    )
    code, out, err = _gen("list", "--root", str(fleet))
    assert code == 2
    assert out.splitlines()[1:] == [
        "lab-broken   invalid  -                              -",
        "lab-minimal  in sync  server,ebpf,cassandra          https://kubernetes.default.svc / default",
        "lab-tuned    in sync  server,ebpf,grafana,cassandra  lab-tuned / profiling-lab",
    ]
    assert err.startswith("clusters/lab-broken.yaml:8:14: error: spec.controlNode.address: ")
    # A rendered cluster whose spec turns invalid is listed once, as invalid: its overlay is no orphan.
    minimal = fleet / "clusters" / "lab-minimal.yaml"
    minimal.write_text(minimal.read_text().replace("spec:\n", "spec:\n  bogus: 1\n"))
    code, out, err = _gen("list", "--root", str(fleet))
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["lab-broken", "invalid"],
        ["lab-minimal", "invalid"],
        ["lab-tuned", "in"],
    ]


def test_list_shows_clusters_that_collide_and_why(fleet: Path) -> None:
    assert _gen("render", "--all", "--root", str(fleet))[0] == 0
    copy = (fleet / "clusters" / "lab-minimal.yaml").read_text().replace("lab-minimal", "lab-copy")
    write_spec(fleet, "lab-copy", copy)
    code, out, err = _gen("list", "--root", str(fleet), "--format", "json")
    assert code == 2
    assert {r["name"]: r["status"] for r in json.loads(out)} == {
        "lab-copy": "stale",
        "lab-minimal": "collides",
        "lab-tuned": "in sync",
    }
    assert err.startswith("clusters/lab-minimal.yaml:12:7: error: spec.argocd.destination: deploys to the same")
