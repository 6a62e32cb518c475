"""``spermtrack info VIDEO``: what a video file holds and how far its header can be trusted."""

from __future__ import annotations

import json

import click

from spermtrack.types import VideoMeta


def format_meta(meta: VideoMeta) -> str:
    """Human-readable lines for :class:`VideoMeta`, warnings last."""
    lines = [
        f"file:        {meta.path}",
        f"size:        {meta.width}x{meta.height} px",
        f"fps:         {meta.fps:.6g} (from {meta.fps_source})",
        f"frames:      {meta.n_frames} (from {meta.n_frames_source})",
        f"duration:    {meta.duration_s:.3f} s",
        f"codec:       {meta.codec or 'unknown'}",
        f"frame rate:  {'VARIABLE' if meta.variable_frame_rate else 'constant'}",
        f"header ok:   {'NO, the container lies' if meta.container_lies else 'yes'}",
    ]
    lines += [f"warning:     {w}" for w in meta.warnings]
    return "\n".join(lines)


@click.command()
@click.argument("video", type=click.Path(dir_okay=False))
@click.option("--fps", type=float, default=None,
              help="Frame rate to use instead of the file's (reported with source 'user').")
@click.option("--scan", type=click.Choice(["packets", "decode", "none"]), default="packets",
              show_default=True,
              help="How to check the header: 'packets' reads every timestamp without decoding "
                   "(fast), 'decode' decodes every frame (slow, exact for damaged files), "
                   "'none' trusts the header.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def info(video: str, fps: float | None, scan: str, as_json: bool) -> None:
    """Print frame rate, size, frame count, codec and duration of VIDEO, with any warning
    about a header that disagrees with the frames (truncated file, wrong rate, variable rate)."""
    from spermtrack.io.video import MIN_FRAME_PX, probe_video

    meta = probe_video(video, fps=fps, scan=scan)
    if as_json:
        click.echo(json.dumps(meta.to_dict()))
    else:
        click.echo(format_meta(meta))
        if min(meta.width, meta.height) < MIN_FRAME_PX:
            click.echo(f"warning:     frames smaller than {MIN_FRAME_PX}x{MIN_FRAME_PX} px are too small "
                       f"for a motility analysis")
