"""From a :class:`~spermtrack.config.Config` to the objects each stage runs with (the one place
where configuration sections become stage parameters)."""

from __future__ import annotations

from pathlib import Path

from spermtrack.config import Config
from spermtrack.errors import InputFileError


def make_detector(cfg: Config):
    """The detector the configuration asks for (blob by default; YOLO with user weights)."""
    from spermtrack.detect.factory import make_detector

    d, e = cfg.detect, cfg.enhance
    if d.detector == "blob":
        return make_detector("blob", enhance=e.enabled, polarity=d.polarity, classifier=d.classifier,
                             score_threshold=d.threshold_z, head_length_px=d.head_length_px)
    if d.weights and not Path(d.weights).is_file():
        raise InputFileError(d.weights, "detector weights not found")
    from spermtrack.detect.enhance import HLDNBM

    return make_detector("yolo", weights=d.weights, enhance=e.enabled, polarity=d.polarity, tile_px=d.tile_px,
                         overlap=d.tile_overlap, conf=d.conf_threshold, full_frame=d.full_frame_pass,
                         enhancer=HLDNBM(e.window_px, e.scale_floor, e.z_clip))


def tracker_params(cfg: Config):
    """The associator's parameters from the ``track`` section."""
    from spermtrack.tracker.associate import TrackerParams

    t = cfg.track
    return TrackerParams(confirm_s=t.confirm_s, max_age_s=t.delete_after_s, max_gate_px=t.max_speed_px_frame)
