"""Every rule of the spec, broken on purpose: the exact error line, exit 2, nothing written."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gen.cli import cli
from tests.conftest import snapshot

CASES = Path(__file__).parent / "negative"
EXPECT = "# expect: "
# The bound for one broken spec, however hostile: refused within 2 seconds.
CASE_SECONDS = 2.0


def _expected(path: Path) -> list[str]:
    # Decoded leniently: some cases hold bytes that are not UTF-8 after their expect lines.
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line[len(EXPECT) :] for line in text.splitlines() if line.startswith(EXPECT)]


@pytest.mark.parametrize("case", sorted(CASES.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_spec_is_refused_with_its_line(case: Path, fleet: Path) -> None:
    shutil.copy(case, fleet / "clusters" / case.name)
    before = snapshot(fleet)
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["render", case.stem, "--root", str(fleet)])
    elapsed = time.monotonic() - start
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert elapsed < CASE_SECONDS, f"{case.name} took {elapsed:.2f} s"
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    expected = _expected(case) or [
        f"clusters/{case.name}:1:1: error: the file is empty; expected a Cluster spec mapping"
    ]
    assert errors == expected
    assert snapshot(fleet) == before


def test_corpus_is_large_enough() -> None:
    assert len(list(CASES.glob("*.yaml"))) >= 40


def test_every_problem_in_every_file_is_reported_in_one_run(fleet: Path) -> None:
    for case in ("unknown-key", "port-wrong-type", "label-reserved"):
        shutil.copy(CASES / f"{case}.yaml", fleet / "clusters" / f"{case}.yaml")
    result = CliRunner().invoke(cli, ["render", "--all", "--root", str(fleet)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert errors == [
        *_expected(CASES / "label-reserved.yaml"),
        *_expected(CASES / "port-wrong-type.yaml"),
        *_expected(CASES / "unknown-key.yaml"),
    ]
    assert not (fleet / "overlays").exists()


def test_non_utf8_bytes_are_located(fleet: Path) -> None:
    (fleet / "clusters" / "bad-bytes.yaml").write_bytes(b"apiVersion: gen.profiling/v1alpha1\nkind: Cl\xffuster\n")
    result = CliRunner().invoke(cli, ["render", "bad-bytes", "--root", str(fleet)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "clusters/bad-bytes.yaml:2:9: error: not valid UTF-8 (byte 0xff)"


@pytest.mark.parametrize("size", [1024 * 1024 + 3, 8 * 1024**3], ids=["just-over", "gigabytes"])
def test_huge_file_is_refused_before_parsing(fleet: Path, size: int) -> None:
    with open(fleet / "clusters" / "huge.yaml", "wb") as f:
        f.write(b"# " + b"x" * (1024 * 1024) + b"\n")
        # Past what is written the file is sparse: no disk space, but 8 GiB to read whole.
        f.truncate(size)
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["render", "huge", "--root", str(fleet)])
    assert time.monotonic() - start < CASE_SECONDS
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "clusters/huge.yaml:1:1: error: file is larger than 1048576 bytes; refused before parsing"
    )


def test_unknown_cluster_names_the_known_ones(fleet: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "lab-nope", "--root", str(fleet)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown cluster(s): lab-nope (known: lab-minimal, lab-tuned)"


def test_a_misspelt_cluster_name_gets_a_suggestion_and_a_large_fleet_no_list(fleet: Path) -> None:
    for n in range(20):
        shutil.copy(fleet / "clusters" / "lab-minimal.yaml", fleet / "clusters" / f"lab-{n:02d}.yaml")
    for command in (["render", "lab-minmal"], ["validate", "lab-minmal"], ["explain", "lab-minmal"]):
        result = CliRunner().invoke(cli, [*command, "--root", str(fleet)])
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            "error: unknown cluster(s): lab-minmal (did you mean lab-minimal?) (known: 22 clusters, see gen list)"
        ), command


def test_a_spec_that_is_a_symlink_is_refused_unread(fleet: Path) -> None:
    # Followed, this link would fail with EIO on its first page: it is refused before any read.
    (fleet / "clusters" / "unreadable.yaml").symlink_to("/proc/self/mem")
    result = CliRunner().invoke(cli, ["render", "unreadable", "--root", str(fleet)])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "clusters/unreadable.yaml:1:1: error: a symbolic link; a cluster spec must be a regular file"
    )
