"""Specs that would deploy the same objects to one destination: refused by render, check and new."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import snapshot, write_spec
from tests.git_fixtures import edit, gen, rendered_repo

IN_CLUSTER = "server https://kubernetes.default.svc"
BOTH = "every object in namespace default, ClusterRole/ClusterRoleBinding pyroscope-ebpf"
BOTH_FIX = "another namespace and ebpf.enabled: false on one of them"


def _copy(fleet: Path, name: str, *edits: tuple[str, str]) -> None:
    """A copy of lab-minimal (in-cluster server, namespace default, eBPF on) under another name."""
    text = (fleet / "clusters" / "lab-minimal.yaml").read_text(encoding="utf-8").replace("lab-minimal", name)
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    write_spec(fleet, name, text)


def _clash(file: str, first: str, owns: str = BOTH, fix: str = BOTH_FIX, where: str = IN_CLUSTER) -> str:
    return (
        f"{file}: error: spec.argocd.destination: deploys to the same destination ({where}) as {first}, "
        f"and both would own {owns}; give it another destination, or {fix}"
    )


def test_three_clusters_on_one_destination_are_two_errors_and_nothing_is_written(fleet: Path) -> None:
    repo = rendered_repo(fleet)
    _copy(repo, "lab-east")
    _copy(repo, "lab-west")
    before = snapshot(repo)
    # Each later spec names the first one, which owns the objects; lab-tuned deploys elsewhere.
    both = [
        _clash("clusters/lab-minimal.yaml:12:7", "clusters/lab-east.yaml"),
        _clash("clusters/lab-west.yaml:12:7", "clusters/lab-east.yaml"),
    ]
    for args, lines in (
        (["render", "--all"], both),  # lab-minimal's placement comes from the render cache
        (["check"], both),
        (["render", "lab-east"], both),  # every pair lab-east is in
        (["render", "lab-west"], both[1:]),
        (["render", "lab-tuned"], []),
    ):
        result = gen(*args, "--root", str(repo))
        if lines:
            assert (result.exit_code, result.stderr.splitlines()) == (2, lines), args
        else:
            assert result.exit_code == 0, result.output
            continue
        assert snapshot(repo) == before, args


def test_each_cause_is_named_and_each_later_spec_names_the_first_owner(fleet: Path) -> None:
    platform = ("  controlNode:", "  platform: kubernetes\n  controlNode:")
    apart = (
        "  controlNode:",
        "  namespace: prof-x2\n  ebpf:\n    enabled: false\n  grafana:\n    namespace: g\n  controlNode:",
    )
    # lab-tuned: name lab-tuned, namespace profiling-lab, eBPF on, Grafana in monitoring.
    to_tuned = ("server: https://kubernetes.default.svc", "name: lab-tuned")
    _copy(fleet, "lab-x1", platform, to_tuned)  # namespace profiling, eBPF on, Grafana in monitoring
    _copy(fleet, "lab-x2", platform, apart, to_tuned)  # shares nothing
    _copy(fleet, "lab-x3", platform, to_tuned)  # as lab-x1
    _copy(fleet, "lab-x4", ("default.svc", "default.svc:443"))  # lab-minimal's server, but not as written
    result = gen("render", "--all", "--root", str(fleet))
    assert result.exit_code == 2
    tuned = "name lab-tuned"
    owns = "ClusterRole/ClusterRoleBinding pyroscope-ebpf, the Grafana ConfigMaps in namespace monitoring"
    fix = "ebpf.enabled: false on one of them and another grafana.namespace"
    assert result.stderr.splitlines() == [
        _clash("clusters/lab-x1.yaml:13:7", "clusters/lab-tuned.yaml", owns, fix, tuned),
        _clash("clusters/lab-x3.yaml:13:7", "clusters/lab-tuned.yaml", owns, fix, tuned),
        _clash(
            "clusters/lab-x3.yaml:13:7",
            "clusters/lab-x1.yaml",
            "every object in namespace profiling",
            "another namespace",
            tuned,
        ),
    ]


def test_a_destination_from_the_defaults_is_reported_there_naming_the_spec(fleet: Path) -> None:
    (fleet / "clusters" / "_defaults.yaml").write_text(
        "apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  argocd:\n    destination:\n      name: shared\n",
        encoding="utf-8",
    )
    _copy(fleet, "lab-x1", ("    destination:\n      server: https://kubernetes.default.svc\n", ""))
    _copy(fleet, "lab-x2", ("    destination:\n      server: https://kubernetes.default.svc\n", ""))
    result = gen("render", "lab-x1", "--root", str(fleet))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        _clash("clusters/_defaults.yaml:6:7", "clusters/lab-x1.yaml", where="name shared").replace(
            "destination: deploys", "destination: clusters/lab-x2.yaml deploys"
        )
    ]


def test_the_readme_collision_is_gen_s(fleet: Path) -> None:
    _copy(fleet, "lab-west")
    result = gen("render", "lab-west", "--root", str(fleet))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] + "\n" in readme


# ------------------------------------------------------------------ gen new

NEW = ["new", "lab-east", "--address", "10.9.0.1"]


def test_new_deploys_to_a_cluster_of_its_own_name_and_reads_the_repository_from_fleet_yaml(fleet: Path) -> None:
    result = gen(*NEW, "--root", str(fleet))
    assert result.exit_code == 0, result.output
    text = (fleet / "clusters" / "lab-east.yaml").read_text(encoding="utf-8")
    assert text.endswith(
        '    repoURL: "https://github.com/acme/profiling-gitops.git"\n'
        "    # targetRevision: main\n"
        "    destination:\n"
        '      name: "lab-east"\n'
    )
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0


def test_new_refuses_a_destination_that_collides_and_writes_nothing(fleet: Path) -> None:
    before = snapshot(fleet)
    for option, owns in (
        (["--destination-server", "https://kubernetes.default.svc"], f"{IN_CLUSTER}) as clusters/lab-minimal.yaml"),
        (["--destination-name", "lab-tuned"], "name lab-tuned) as clusters/lab-tuned.yaml"),
    ):
        result = gen(*NEW, *option, "--root", str(fleet))
        assert result.exit_code == 2
        owned = BOTH if "minimal" in owns else "ClusterRole/ClusterRoleBinding pyroscope-ebpf"
        assert result.stderr.splitlines() == [
            f"error: clusters/lab-east.yaml would deploy to the same destination ({owns}, and both would own "
            f"{owned}: pick another with --destination-name or --destination-server"
        ]
    assert snapshot(fleet) == before


def test_new_needs_a_repository_without_fleet_yaml(fleet: Path) -> None:
    (fleet / "fleet.yaml").unlink()
    result = gen(*NEW, "--root", str(fleet))
    assert (result.exit_code, result.stderr.splitlines()) == (
        2,
        ["error: give --repo-url: there is no fleet.yaml to take the fleet's repository from"],
    )
    assert not (fleet / "clusters" / "lab-east.yaml").exists()
    assert gen(*NEW, "--repo-url", "https://a.example/b.git", "--root", str(fleet)).exit_code == 0


def test_a_cluster_edited_onto_another_s_destination_fails_check(fleet: Path) -> None:
    repo = rendered_repo(fleet)
    _copy(repo, "lab-east", ("server: https://kubernetes.default.svc", "name: lab-east"))
    assert gen("render", "--all", "--root", str(repo)).exit_code == 0
    edit(repo / "clusters/lab-east.yaml", "      name: lab-east", "      name: lab-tuned")
    result = gen("check", "--root", str(repo))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        _clash(
            "clusters/lab-tuned.yaml:61:7",
            "clusters/lab-east.yaml",
            "ClusterRole/ClusterRoleBinding pyroscope-ebpf",
            "ebpf.enabled: false on one of them",
            "name lab-tuned",
        )
    ]
