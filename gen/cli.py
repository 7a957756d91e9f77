"""The command line: parse options, call a command, map errors to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gen.errors import EXIT_TOOL, EXIT_USAGE, GenError
from gen.output import Output

ROOT = click.option(
    "--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
    show_default=True, help="The fleet repository (holds clusters/ and overlays/).",
)
FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text",
                      show_default=True, help="github prints CI annotations.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of unexpected errors.")
@click.version_option(package_name="gen")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Render and check the continuous-profiling stack of Cassandra lab clusters."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_clusters", is_flag=True, help="Every spec in clusters/, and remove orphaned overlays.")
@ROOT
@FORMAT
def render(names: tuple[str, ...], all_clusters: bool, root: Path, fmt: str) -> None:
    """Render the overlays of NAMES (or --all) and write them."""
    from gen.commands import render as command

    sys.exit(command.run(root, names, all_clusters, Output(fmt=fmt)))


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--kubernetes-version", default="1.33", show_default=True,
              help="Kubernetes version whose schemas the objects must pass.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Parallel kustomize builds (default: one per core).")
@ROOT
def validate(names: tuple[str, ...], kubernetes_version: str, jobs: int | None, root: Path) -> None:
    """Build each overlay with kustomize and validate every object strictly."""
    from gen.commands import validate as command

    sys.exit(command.run(root, names, kubernetes_version, jobs, Output()))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors as lines, never tracebacks."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="gen", standalone_mode=False)
    except GenError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        print("gen: interrupted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("gen: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        print(f"gen: unexpected error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(EXIT_TOOL + 1)
    sys.exit(0)
