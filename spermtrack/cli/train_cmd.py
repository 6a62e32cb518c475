"""``spermtrack train ...``: train our own models offline (no weights are ever downloaded)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("train")
def train() -> None:
    """Train models from VISEM-Tracking labels or `spermtrack synth` output."""


@train.command("detector")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--model", default="yolo11n.yaml", show_default=True, help="Model YAML (from scratch) or .pt.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--imgsz", type=int, default=320, show_default=True)
@click.option("--tile", type=int, default=320, show_default=True, help="Tile side in px (0: full frames).")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--enhance/--no-enhance", default=True, show_default=True, help="Train on HLDNBM-enhanced frames.")
@click.option("--frame-step", type=int, default=5, show_default=True, help="Use every n-th annotated frame.")
@click.option("--augment-copies", type=int, default=0, show_default=True,
              help="Extra copies of each tile over re-rendered Laplace backgrounds.")
@click.option("--device", default=None, help="cpu, 0, ... (default: GPU when present).")
@click.option("--seed", type=int, default=0, show_default=True)
def train_detector_cmd(data, out_dir, model, epochs, imgsz, tile, batch, enhance, frame_step, augment_copies,
                       device, seed) -> None:
    """Train a YOLO head detector on DATA (a VISEM-Tracking root or synth output)."""
    from spermtrack.detect.train import DetectorTrainConfig, train_detector

    cfg = DetectorTrainConfig(model=model, epochs=epochs, imgsz=imgsz, batch=batch, tile=tile, enhance=enhance,
                              frame_step=frame_step, augment_copies=augment_copies, device=device, seed=seed)
    weights = train_detector(data, out_dir, cfg)
    click.echo(f"weights: {weights}")


@train.command("reid")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Output weights (.pt).")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--ids-per-batch", type=int, default=16, show_default=True)
@click.option("--crops-per-id", type=int, default=4, show_default=True)
@click.option("--crops-per-track", type=int, default=16, show_default=True)
@click.option("--device", default=None, help="cpu or cuda (default: GPU when present).")
@click.option("--seed", type=int, default=0, show_default=True)
def train_reid_cmd(data, out_path, epochs, ids_per_batch, crops_per_id, crops_per_track, device, seed) -> None:
    """Train the ResNet50 ReID embedder on head crops of the tracks in DATA."""
    from spermtrack.tracker.reid import ReIDTrainConfig, train_reid

    cfg = ReIDTrainConfig(epochs=epochs, ids_per_batch=ids_per_batch, crops_per_id=crops_per_id,
                          crops_per_track=crops_per_track, device=device, seed=seed)
    click.echo(f"weights: {train_reid(data, out_path, cfg)}")


@train.command("seg")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output weights (.pt); the run and dataset go to <stem>_run/.")
@click.option("--model", default="yolo11n-seg.yaml", show_default=True, help="Model YAML (from scratch) or .pt.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--imgsz", type=int, default=64, show_default=True)
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--crop-size", type=int, default=64, show_default=True, help="Crop side (px); must match inference.")
@click.option("--anchor", type=float, default=0.5, show_default=True, help="Head position in the crop (as inference).")
@click.option("--max-crops", type=int, default=5000, show_default=True)
@click.option("--device", default=None, help="cpu, 0, ... (default: GPU when present).")
@click.option("--seed", type=int, default=0, show_default=True)
def train_seg_cmd(data, out_path, model, epochs, imgsz, batch, crop_size, anchor, max_crops, device, seed) -> None:
    """Train a head / midpiece / tail segmentation model on crops of DATA (synth output or a YOLO-seg dataset)."""
    from spermtrack.morphology.train_seg import SegTrainConfig, train_seg

    cfg = SegTrainConfig(model=model, epochs=epochs, imgsz=imgsz, batch=batch, crop_size=crop_size, anchor=anchor,
                         max_crops=max_crops, device=device, seed=seed)
    click.echo(f"weights: {train_seg(data, out_path, cfg)}")


@train.command("classifier")
@click.argument("data", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output weights (.pt).")
@click.option("--arch", type=click.Choice(["vit", "cnn"]), default="cnn", show_default=True,
              help="Model (default: the winner of benchmarks/classifier.py).")
@click.option("--frames", default=None, help="Frames A:B of each video (0-based, B excluded; 0:735 = frames 0-734).")
@click.option("--frame-step", type=int, default=3, show_default=True, help="Use every n-th annotated frame.")
@click.option("--epochs", type=int, default=6, show_default=True)
@click.option("--batch", type=int, default=256, show_default=True)
@click.option("--max-impurity-ratio", type=float, default=2.0, show_default=True,
              help="Keep at most this many impurity samples per sperm/cluster sample (0: all).")
@click.option("--crop-size", type=int, default=24, show_default=True, help="Crop side (px).")
@click.option("--channels", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="1: per-crop normalised crop only; 2: + contrast relative to the video's head contrast.")
@click.option("--width", type=int, default=8, show_default=True, help="CNN width (channels of the first conv).")
@click.option("--extra-frames", "extra_frames", multiple=True, type=click.Path(path_type=Path),
              help="Folder of labelled real JPEGs (<vid>_frame_<n>[_approx].jpg + labels/); repeatable.")
@click.option("--synth-videos", type=int, default=0, show_default=True,
              help="Add N synthetic videos rendered on the fly (cycling over looks x difficulties).")
@click.option("--synth-looks", default="visem", show_default=True,
              help="Phantom looks of the synthetic videos, comma-separated (visem, classic).")
@click.option("--synth-difficulties", default="easy,medium,hard", show_default=True,
              help="Difficulties of the synthetic videos, comma-separated (easy, medium, hard).")
@click.option("--label-smoothing", type=float, default=0.05, show_default=True)
@click.option("--tta", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
              help="Test-time augmentation views recorded in the weights (1: none; 4: + 180 deg and mirrors).")
@click.option("--seed", type=int, default=0, show_default=True)
def train_classifier_cmd(data, out_path, arch, frames, frame_step, epochs, batch, max_impurity_ratio, crop_size,
                         channels, width, extra_frames, synth_videos, synth_looks, synth_difficulties,
                         label_smoothing, tta, seed) -> None:
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
                                channels=int(channels), width=width, label_smoothing=label_smoothing)
    command = " ".join(["spermtrack train classifier", *map(str, data), f"--arch {arch}"]
                       + ([f"--frames {frames}"] if frames else [])
                       + [f"--frame-step {frame_step} --epochs {epochs} --batch {batch} --max-impurity-ratio {max_impurity_ratio:g} "
                          f"--crop-size {crop_size} --channels {channels} --width {width}"]
                       + [f"--extra-frames {e}" for e in extra_frames]
                       + [f"--synth-videos {synth_videos}"]
                       + ([f"--synth-looks {','.join(looks)} --synth-difficulties {','.join(diffs)}"] if synth_videos else [])
                       + [f"--label-smoothing {label_smoothing:g} --tta {tta} --seed {seed} --out {out_path}"])
    out = train_classifier(list(data), out_path, cfg, frames=frames, frame_step=frame_step,
                           extra_frames=list(extra_frames), synth_videos=synth_videos,
                           max_impurity_ratio=max_impurity_ratio, synth_looks=looks, synth_difficulties=diffs,
                           tta=int(tta), command=command, log=lambda m: click.echo(m, err=True))
    click.echo(f"weights: {out}")
