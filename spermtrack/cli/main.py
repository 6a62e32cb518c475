"""Entry point of the ``spermtrack`` command.

Sub-commands live in their own modules and are imported only when invoked, so that
``spermtrack kinematics`` does not pay for importing torch. Errors derived from
:class:`spermtrack.errors.SpermtrackError` (and a few OS errors) are printed as one line on
stderr with exit code 2; ``--debug`` shows the traceback instead. OS errors name the file the
user asked for, never the temporary file of an atomic write; disk full and quota exceeded say so.
"""

from __future__ import annotations

import difflib
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


#: command name -> one-line summary for ``spermtrack --help`` (listed without importing the
#: commands; each command's own ``--help`` has the full text). Keep each under ~55 characters so
#: that an 80-column terminal shows it whole.
SHORT_HELP: dict[str, str] = {
    "info": "Frame rate, size, frame count and codec of a video.",
    "synth": "Write synthetic videos with exact ground truth.",
    "kinematics": "CASA kinematics and WHO grades from a track file.",
    "detect": "Detect sperm heads in a video (MOT detections).",
    "train": "Train the detector, ReID, segmenter or classifier.",
    "visem-check": "Read a VISEM-Tracking copy and check its labels.",
    "evaluate": "Score tracks against ground truth (HOTA, IDF1).",
    "track": "Link MOT detections into tracks.",
    "analyze": "Analyse videos: tracks, grades, morphology, report.",
    "demo": "Render a synthetic clip, analyse it, check it.",
    "visem": "Compare motility with the lab on VISEM-Tracking.",
    "batch": "Analyse many videos in parallel (resumable).",
    "morphology": "Indicative head / midpiece / tail morphometry.",
}

#: help width when the terminal is wider than 80 columns
MAX_HELP_WIDTH = 100


def suggest(name: str, choices) -> list[str]:
    """Commands the user may have meant by ``name``: those it starts, else close spellings."""
    choices = sorted(choices)
    starts = [c for c in choices if c.startswith(name)] if len(name) >= 2 else []
    return starts[:3] or difflib.get_close_matches(name, choices, n=2, cutoff=0.6)


class SuggestGroup(click.Group):
    """A group that answers a mistyped command with "Did you mean ...?"."""

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if (name and not name.startswith("-") and not ctx.resilient_parsing
                and name not in self.list_commands(ctx)):
            close = suggest(name, self.list_commands(ctx))
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean "
                         f"{' or '.join(repr(c) for c in close)}?")
        return super().resolve_command(ctx, args)


class LazyGroup(SuggestGroup):
    """The top-level group: commands are imported only when run (or listed by ``--help``)."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            text = SHORT_HELP.get(name)
            if text is None:
                text = self.get_command(ctx, name).get_short_help_str(formatter.width - 6 - len(name))
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                              "max_content_width": MAX_HELP_WIDTH})
@click.version_option(__version__, prog_name="spermtrack")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """spermtrack: detect, track and grade spermatozoa in microscope videos.

    Run `spermtrack COMMAND --help` for a command's options.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 a user-facing error, 1 a bug)."""
    from spermtrack.errors import SpermtrackError, describe_os_error, hide_temp_names

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
    except SpermtrackError as err:
        if debug:
            raise
        click.echo(f"spermtrack: error: {hide_temp_names(str(err))}", err=True)
        return 2
    except OSError as err:
        # disk full / quota, a file we cannot read or write: one line naming the final file
        line = describe_os_error(err)
        if line is None and isinstance(err, _USER_OS_ERRORS):
            line = hide_temp_names(str(err))
        if debug or line is None:
            raise
        click.echo(f"spermtrack: error: {line}", err=True)
        return 2
    return 0


#: OS errors shown as one line even when they name no file
_USER_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
