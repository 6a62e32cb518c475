"""``spermtrack train ...``: train our own models offline (no weights are ever downloaded)."""

from __future__ import annotations

from pathlib import Path

import click

from spermtrack.cli.main import SuggestGroup

#: counts that must be whole numbers >= 1 (click answers a bad value with a usage error)
_POSITIVE = click.IntRange(min=1)
_NON_NEGATIVE = click.IntRange(min=0)


def _tta_views(ctx, param, value: int) -> int:
    """``--tta``: 1, 2, 4 or 8 test-time views."""
    if value not in (1, 2, 4, 8):
        raise click.BadParameter(f"{value} is not one of 1, 2, 4, 8", ctx=ctx, param=param)
    return value


@click.group("train", cls=SuggestGroup)
def train() -> None:
    """Train models from VISEM-Tracking labels or `spermtrack synth` output."""


@train.command("detector", short_help="YOLO head detector from VISEM-Tracking or synth data.")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (weights, training run and tiles).")
@click.option("--model", default="yolo11n.yaml", show_default=True,
              help="Model YAML (from scratch) or .pt to start from (an ultralytics .pt is a pickle that can "
                   "run code: load only weights you trust).")
@click.option("--epochs", type=_POSITIVE, default=30, show_default=True, help="Training epochs.")
@click.option("--imgsz", type=_POSITIVE, default=320, show_default=True, help="Network input side (px).")
@click.option("--tile", type=_NON_NEGATIVE, default=320, show_default=True, help="Tile side in px (0: full frames).")
@click.option("--batch", type=_POSITIVE, default=16, show_default=True, help="Images per batch.")
@click.option("--enhance/--no-enhance", default=True, show_default=True, help="Train on HLDNBM-enhanced frames.")
@click.option("--frame-step", type=_POSITIVE, default=5, show_default=True, help="Use every n-th annotated frame.")
@click.option("--augment-copies", type=_NON_NEGATIVE, default=0, show_default=True,
              help="Extra copies of each tile over re-rendered Laplace backgrounds.")
@click.option("--device", default=None, help="cpu, 0, ... (default: GPU when present).")
@click.option("--seed", type=_NON_NEGATIVE, default=0, show_default=True, help="Random seed.")
def train_detector_cmd(data, out_dir, model, epochs, imgsz, tile, batch, enhance, frame_step, augment_copies,
                       device, seed) -> None:
    """Train a YOLO head detector on DATA (a VISEM-Tracking root or synth output)."""
    from spermtrack.detect.train import DetectorTrainConfig, train_detector

    cfg = DetectorTrainConfig(model=model, epochs=epochs, imgsz=imgsz, batch=batch, tile=tile, enhance=enhance,
                              frame_step=frame_step, augment_copies=augment_copies, device=device, seed=seed)
    weights = train_detector(data, out_dir, cfg)
    click.echo(f"weights: {weights}")


@train.command("reid", short_help="ResNet50 ReID embedder on head crops.")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Output weights (.pt).")
@click.option("--epochs", type=_POSITIVE, default=10, show_default=True, help="Training epochs.")
@click.option("--ids-per-batch", type=click.IntRange(min=2), default=16, show_default=True, help="Track ids per batch.")
@click.option("--crops-per-id", type=click.IntRange(min=2), default=4, show_default=True,
              help="Crops of each id per batch (batch-hard mining needs 2 or more).")
@click.option("--crops-per-track", type=_POSITIVE, default=16, show_default=True,
              help="Crops taken from each track.")
@click.option("--device", default=None, help="cpu or cuda (default: GPU when present).")
@click.option("--seed", type=_NON_NEGATIVE, default=0, show_default=True, help="Random seed.")
def train_reid_cmd(data, out_path, epochs, ids_per_batch, crops_per_id, crops_per_track, device, seed) -> None:
    """Train the ResNet50 ReID embedder on head crops of the tracks in DATA."""
    from spermtrack.tracker.reid import ReIDTrainConfig, train_reid

    cfg = ReIDTrainConfig(epochs=epochs, ids_per_batch=ids_per_batch, crops_per_id=crops_per_id,
                          crops_per_track=crops_per_track, device=device, seed=seed)
    click.echo(f"weights: {train_reid(data, out_path, cfg)}")


@train.command("seg", short_help="Head / midpiece / tail segmentation model on crops.")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output weights (.pt); the run and dataset go to <stem>_run/.")
@click.option("--model", default="yolo11n-seg.yaml", show_default=True,
              help="Model YAML (from scratch) or .pt to start from (an ultralytics .pt is a pickle that can "
                   "run code: load only weights you trust).")
@click.option("--epochs", type=_POSITIVE, default=30, show_default=True, help="Training epochs.")
@click.option("--imgsz", type=_POSITIVE, default=64, show_default=True, help="Network input side (px).")
@click.option("--batch", type=_POSITIVE, default=32, show_default=True, help="Images per batch.")
@click.option("--crop-size", type=_POSITIVE, default=64, show_default=True, help="Crop side (px); must match inference.")
@click.option("--anchor", type=float, default=0.5, show_default=True, help="Head position in the crop (as inference).")
@click.option("--max-crops", type=_POSITIVE, default=5000, show_default=True, help="Most crops used.")
@click.option("--device", default=None, help="cpu, 0, ... (default: GPU when present).")
@click.option("--seed", type=_NON_NEGATIVE, default=0, show_default=True, help="Random seed.")
def train_seg_cmd(data, out_path, model, epochs, imgsz, batch, crop_size, anchor, max_crops, device, seed) -> None:
    """Train a head / midpiece / tail segmentation model on crops of DATA (synth output or a YOLO-seg dataset)."""
    from spermtrack.morphology.train_seg import SegTrainConfig, train_seg

    cfg = SegTrainConfig(model=model, epochs=epochs, imgsz=imgsz, batch=batch, crop_size=crop_size, anchor=anchor,
                         max_crops=max_crops, device=device, seed=seed)
    click.echo(f"weights: {train_seg(data, out_path, cfg)}")


@train.command("classifier", short_help="Sperm / impurity / cluster classifier of candidates.")
@click.argument("data", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output weights (.pt).")
@click.option("--arch", type=click.Choice(["vit", "cnn"]), default="cnn", show_default=True,
              help="Model (default: the winner of benchmarks/classifier.py).")
@click.option("--frames", default=None, help="Frames A:B of each video (0-based, B excluded; 0:735 = frames 0-734).")
@click.option("--frame-step", type=_POSITIVE, default=3, show_default=True, help="Use every n-th annotated frame.")
@click.option("--epochs", type=_POSITIVE, default=6, show_default=True, help="Training epochs.")
@click.option("--batch", type=_POSITIVE, default=256, show_default=True, help="Crops per batch.")
@click.option("--max-impurity-ratio", type=float, default=2.0, show_default=True,
              help="Keep at most this many impurity samples per sperm/cluster sample (0: all).")
@click.option("--crop-size", type=_POSITIVE, default=24, show_default=True, help="Crop side (px).")
@click.option("--channels", type=click.IntRange(1, 2), default=2, show_default=True,
              help="1: per-crop normalised crop only; 2: + contrast relative to the video's head contrast.")
@click.option("--width", type=_POSITIVE, default=8, show_default=True, help="CNN width (channels of the first conv).")
@click.option("--extra-frames", "extra_frames", multiple=True, type=click.Path(path_type=Path),
              help="Folder of labelled real JPEGs (<vid>_frame_<n>[_approx].jpg + labels/); repeatable.")
@click.option("--synth-videos", type=_NON_NEGATIVE, default=0, show_default=True,
              help="Add N synthetic videos rendered on the fly (cycling over looks x difficulties).")
@click.option("--synth-looks", default="visem", show_default=True,
              help="Phantom looks of the synthetic videos, comma-separated (visem, classic).")
@click.option("--synth-difficulties", default="easy,medium,hard", show_default=True,
              help="Difficulties of the synthetic videos, comma-separated (easy, medium, hard).")
@click.option("--label-smoothing", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.05,
              show_default=True, help="Label smoothing of the cross-entropy loss.")
@click.option("--scale-jitter", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Zoom augmentation: head sizes log-uniform within x(1 + S) of the data's (0: none).")
@click.option("--tta", type=int, default=1, show_default=True, callback=_tta_views,
              help="Test-time augmentation views recorded in the weights: 1, 2, 4 or 8 "
                   "(1: none; 4: + 180 deg and mirrors).")
@click.option("--seed", type=_NON_NEGATIVE, default=0, show_default=True, help="Random seed.")
def train_classifier_cmd(data, out_path, arch, frames, frame_step, epochs, batch, max_impurity_ratio, crop_size,
                         channels, width, extra_frames, synth_videos, synth_looks, synth_difficulties,
                         label_smoothing, scale_jitter, tta, seed) -> None:
    """Train the sperm / impurity / cluster classifier of detector candidates on DATA (VISEM-layout
    video folders or roots, real or `spermtrack synth` output)."""
    from spermtrack.detect.classifier_data import ClassifierTrainConfig, parse_list, train_classifier
    from spermtrack.errors import InputFileError

    if not data and not extra_frames and not synth_videos:
        raise click.UsageError("give DATA, --extra-frames or --synth-videos")
    for d in data:
        if not Path(d).exists():
            raise InputFileError(d, "no such DATA folder")
    looks = parse_list(synth_looks, ("visem", "classic"), "--synth-looks")
    diffs = parse_list(synth_difficulties, ("easy", "medium", "hard"), "--synth-difficulties")
    cfg = ClassifierTrainConfig(arch=arch, crop_size=crop_size, epochs=epochs, batch=batch, seed=seed,
                                channels=channels, width=width, label_smoothing=label_smoothing,
                                scale_jitter=scale_jitter)
    command = " ".join(["spermtrack train classifier", *map(str, data), f"--arch {arch}"]
                       + ([f"--frames {frames}"] if frames else [])
                       + [f"--frame-step {frame_step} --epochs {epochs} --batch {batch} --max-impurity-ratio {max_impurity_ratio:g} "
                          f"--crop-size {crop_size} --channels {channels} --width {width}"]
                       + [f"--extra-frames {e}" for e in extra_frames]
                       + [f"--synth-videos {synth_videos}"]
                       + ([f"--synth-looks {','.join(looks)} --synth-difficulties {','.join(diffs)}"] if synth_videos else [])
                       + [f"--label-smoothing {label_smoothing:g}"]
                       + ([f"--scale-jitter {scale_jitter:g}"] if scale_jitter else [])
                       + [f"--tta {tta} --seed {seed} --out {out_path}"])
    out = train_classifier(list(data), out_path, cfg, frames=frames, frame_step=frame_step,
                           extra_frames=list(extra_frames), synth_videos=synth_videos,
                           max_impurity_ratio=max_impurity_ratio, synth_looks=looks, synth_difficulties=diffs,
                           tta=tta, command=command, log=lambda m: click.echo(m, err=True))
    click.echo(f"weights: {out}")
