"""Entry point of the ``spermtrack`` command.

Sub-commands live in their own modules and are imported only when invoked, so that
``spermtrack kinematics`` does not pay for importing torch. Errors derived from
:class:`spermtrack.errors.SpermtrackError` (and a few OS errors) are printed as one line on
stderr with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys

import click

from spermtrack import __version__

#: command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "info": "spermtrack.cli.video_cmds:info",
    "synth": "spermtrack.cli.synth_cmd:synth",
    "kinematics": "spermtrack.cli.kinematics_cmd:kinematics",
    "detect": "spermtrack.cli.detect_cmd:detect",
    "train": "spermtrack.cli.train_cmd:train",
    "visem-check": "spermtrack.cli.visem_cmd:visem_check",
    "evaluate": "spermtrack.cli.evaluate_cmd:evaluate",
    "track": "spermtrack.cli.track_cmd:track",
    "analyze": "spermtrack.cli.analyze_cmd:analyze",
    "demo": "spermtrack.cli.analyze_cmd:demo",
    "visem": "spermtrack.cli.visem_runner_cmd:visem",
    "batch": "spermtrack.cli.batch_cmd:batch",
    "morphology": "spermtrack.cli.morphology_cmd:morphology",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spermtrack")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """spermtrack: detect, track and grade spermatozoa in microscope videos."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 a user-facing error, 1 a bug)."""
    from spermtrack.errors import SpermtrackError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="spermtrack", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("spermtrack: aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except (SpermtrackError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        if debug:
            raise
        click.echo(f"spermtrack: error: {err}", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
