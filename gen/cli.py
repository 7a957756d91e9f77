"""The command line: parse options, call a command, map errors to exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gen.errors import EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_UNEXPECTED, GenError, describe_os_error, printable
from gen.output import Output

F = TypeVar("F", bound=Callable[..., Any])


def _root(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    # Before the command (gen --root X list) or after it (gen list --root X): the command's wins.
    given = ctx.find_root().params.get("root")
    return value or given or Path(".")


def _quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().ensure_object(dict)["quiet"] = True


def fleet_options(f: F) -> F:
    """--root and --quiet, which every command takes after its name as well as before it."""
    quiet = "Print only results and problems: no summary, no progress, no list of written files."
    f = click.option("--quiet", "-q", is_flag=True, expose_value=False, callback=_quiet, help=quiet)(f)
    root = "The fleet repository (holds fleet.yaml and clusters/; default: the current directory)."
    return click.option("--root", type=click.Path(file_okay=False, path_type=Path), callback=_root, help=root)(f)


def _cluster_names(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """The fleet's cluster names, for shell completion."""
    from gen.spec.loader import spec_files

    root = ctx.params.get("root") or ctx.find_root().params.get("root") or Path(".")
    try:
        return [name for name in spec_files(root) if name.startswith(incomplete)]
    except GenError:
        return []


def _output(fmt: str = "text", root: Path | None = None) -> Output:
    out = Output(fmt=fmt, quiet=bool(click.get_current_context().find_root().obj.get("quiet")))
    if fmt == "github" and root is not None:
        from gen.render.writer import repo_prefix

        out.prefix = repo_prefix(root)
    return out


def _format(*choices: str, about: str | None = None) -> Callable[[F], F]:
    return click.option("--format", "fmt", type=click.Choice(choices), default="text", show_default=True, help=about)


class _Group(click.Group):
    """Turns gen's own errors into their lines on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except GenError as e:
            for line in e.lines():
                click.echo(printable(line), err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            # What was being written is cleaned up on the way here (gen.render.writer).
            click.echo("gen: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except OSError as e:
            # The file system refused (read-only, full, a file where a directory must be):
            # no bug in gen, and nothing the traceback would explain better than the path.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"gen: error: {describe_os_error(e)}", err=True)
            ctx.exit(EXIT_ENVIRONMENT)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of unexpected errors.")
@fleet_options
@click.version_option(package_name="gen")
@click.pass_context
def cli(ctx: click.Context, debug: bool, root: Path) -> None:
    """Render and check the continuous-profiling stack of Cassandra lab clusters."""
    del root  # each command reads it, given before its name or after
    ctx.ensure_object(dict)["debug"] = debug


def _jobs(what: str) -> Callable[[F], F]:
    """The --jobs option: how many of `what` run at once, never more than MAX_JOBS."""
    from gen.render.workers import MAX_JOBS

    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1, max=MAX_JOBS),
        help=f"Parallel {what}, at most {MAX_JOBS} (default: one per usable core, at most {MAX_JOBS}).",
    )


@cli.command()
@click.argument("names", nargs=-1, shell_complete=_cluster_names)
@click.option("--all", "all_clusters", is_flag=True, help="Every spec in clusters/, and remove orphaned overlays.")
@_jobs("render processes")
@click.option(
    "--no-cache", is_flag=True, help="With --all, render every cluster, also those whose files are known to be current."
)
@fleet_options
@_format("text", "github", about="github prints CI annotations.")
def render(  # noqa: PLR0917 - one parameter per option, as click passes them
    names: tuple[str, ...], all_clusters: bool, jobs: int | None, no_cache: bool, root: Path, fmt: str
) -> None:
    """Render the overlays of NAMES (or --all) and write them."""
    from gen.commands import render as command

    sys.exit(command.run(root, names, all_clusters, _output(fmt, root), jobs=jobs, cached=not no_cache))


@cli.command()
@click.argument("names", nargs=-1, shell_complete=_cluster_names)
@click.option("--all", "all_clusters", is_flag=True, help="Every cluster (the default when no NAMES are given).")
@click.option(
    "--kubernetes-version",
    default="1.33",
    show_default=True,
    help="Kubernetes version whose schemas the objects must pass.",
)
@_jobs("kustomize builds")
@click.option(
    "--crds",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also validate the Argo CD objects against the CRD schemas in this folder.",
)
@click.option(
    "--changed-since",
    metavar="REF",
    help="Only the clusters whose overlay, Application or base/ differ from git revision REF.",
)
@fleet_options
@_format("text", "json")
def validate(  # noqa: PLR0917 - one parameter per option, as click passes them
    names: tuple[str, ...],
    all_clusters: bool,
    kubernetes_version: str,
    jobs: int | None,
    crds: Path | None,
    changed_since: str | None,
    root: Path,
    fmt: str,
) -> None:
    """Build each overlay with kustomize and validate every object strictly.

    With no NAMES, also check the Argo CD objects: strictly, against the CRDs
    with --crds, their source paths, and destinations that collide (with
    --changed-since, only when argocd/ or fleet.yaml changed).
    """
    from gen.commands import validate as command

    sys.exit(
        command.run(
            root,
            names,
            kubernetes_version,
            jobs,
            _output(fmt),
            crds=crds,
            all_clusters=all_clusters,
            changed_since=changed_since,
        )
    )


@cli.command()
@click.argument("name", shell_complete=_cluster_names)
@click.argument("field", required=False)
@_format("text", "json")
@fleet_options
def explain(name: str, field: str | None, fmt: str, root: Path) -> None:
    """Show each field's effective value for cluster NAME and where it came from.

    FIELD (e.g. server.port or spec.cassandra) narrows the output.
    """
    from gen.commands import explain as command

    sys.exit(command.run(root, name, field, _output(fmt)))


@cli.command()
@click.argument("name")
@click.option("--address", required=True, help="IP or DNS name of the control node.")
@click.option("--repo-url", help="Git URL of the fleet repository (default: fleet.yaml's repoURL).")
@click.option("--destination-server", "server", help="API server URL to deploy to.")
@click.option(
    "--destination-name",
    "cluster_name",
    help="Name of the cluster registered in Argo CD to deploy to (default: NAME).",
)
@fleet_options
def new(  # noqa: PLR0917 - one parameter per option, as click passes them
    name: str, address: str, repo_url: str | None, server: str | None, cluster_name: str | None, root: Path
) -> None:
    """Scaffold clusters/NAME.yaml with the required fields and the common options."""
    from gen.commands import new as command

    sys.exit(
        command.run(
            root, name, address=address, repo_url=repo_url, server=server, cluster_name=cluster_name, out=_output()
        )
    )


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--repo-url", help="Git URL Argo CD reads the new repository from (asked when omitted).")
@fleet_options
def init(directory: Path | None, repo_url: str | None, root: Path) -> None:
    """Start a fleet repository in DIRECTORY (default: --root): fleet.yaml, clusters/, base/, CI and hooks."""
    from gen.commands import init as command

    if repo_url is None and sys.stdin.isatty():
        repo_url = click.prompt("Git URL Argo CD reads this repository from")
    sys.exit(command.run(directory or root, repo_url, _output()))


@cli.command()
@fleet_options
def schema(root: Path) -> None:
    """Print the JSON Schema of the cluster spec."""
    from gen.spec.schema import schema_text

    del root  # the same for every fleet
    click.echo(schema_text(), nl=False)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@fleet_options
def completion(shell: str, root: Path) -> None:
    """Print the shell completion script, e.g. eval "$(gen completion bash)" in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    del root  # the same for every fleet
    completer = get_completion_class(shell)
    assert completer is not None, "click ships all three"
    click.echo(completer(cli, {}, "gen", "_GEN_COMPLETE").source())


@cli.command(name="list")
@_format("text", "json")
@fleet_options
def list_clusters(fmt: str, root: Path) -> None:
    """List every cluster with its status (in sync, stale, invalid, collides, orphan), components and destination."""
    from gen.commands import list as command

    sys.exit(command.run(root, _output(fmt)))


@cli.command()
@_jobs("render processes")
@click.option("--no-cache", is_flag=True, help="Render every cluster, also those whose files are known to be current.")
@fleet_options
@_format("text", "github", "json", about="github prints CI annotations; json one document.")
def check(jobs: int | None, no_cache: bool, root: Path, fmt: str) -> None:
    """Fail (exit 1) when the committed overlays or Argo CD files differ from what the specs render."""
    from gen.commands import check as command

    sys.exit(command.run(root, _output(fmt, root), jobs=jobs, cached=not no_cache))


@cli.command()
@click.option(
    "--base", "ref", help="The git revision to compare with (default: the merge base with upstream, else HEAD)."
)
@_format("text", "markdown", "json", about="markdown is a pull-request comment.")
@click.option(
    "--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True, help="Text colours."
)
@click.option(
    "--max-chars",
    type=click.IntRange(min=2000),
    default=60_000,
    show_default=True,
    help="Markdown stops before this size, saying what it left out.",
)
@fleet_options
def diff(ref: str | None, fmt: str, color: str, max_chars: int, root: Path) -> None:
    """Show what the fully built manifests change between --base and the working tree.

    Per cluster and object: changed fields with old and new values, the spec
    line behind each, and what restarts. Changes nothing; exit 0, or 1 when a side
    holds a tree that is not safe to build.
    """
    from gen.commands import diff as command

    sys.exit(command.run(root, ref, fmt, _output(), color=color, max_chars=max_chars))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors as lines, an unexpected error as one line and a hint."""
    args = sys.argv[1:] if argv is None else argv
    try:
        cli.main(args=args, prog_name="gen")
    except Exception as e:  # not SystemExit (click's exit) nor KeyboardInterrupt: neither is an Exception
        if "--debug" in args:
            raise
        print(f"gen: unexpected error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(EXIT_UNEXPECTED)
