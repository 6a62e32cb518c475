"""From a :class:`~spermtrack.config.Config` to the objects each stage runs with (the one place
where configuration sections become stage parameters).

A config key feeds the stage parameter of the same name; the older keys whose names differ are
listed in :mod:`spermtrack.config`'s docstring and mapped here explicitly. The default
configuration gives each stage's default parameters (tests/test_types_config.py checks it).
"""

from __future__ import annotations

import dataclasses

from spermtrack.config import Config


def blob_params(cfg: Config):
    """The blob detector's :class:`~spermtrack.detect.blob.BlobParams`: ``detect.polarity``,
    ``detect.threshold_z`` (``score_threshold``), ``detect.head_length_px`` and ``detect.blob``."""
    from spermtrack.detect.blob import BlobParams

    d = cfg.detect
    return BlobParams(polarity=d.polarity, score_threshold=d.threshold_z, head_length_px=d.head_length_px,
                      **dataclasses.asdict(d.blob))


def make_detector(cfg: Config):
    """The detector the configuration asks for (blob by default; YOLO with user weights).

    Raises:
        ParameterError: YOLO without weights.
        InputFileError: YOLO weights missing or not an ultralytics detection model.
    """
    from spermtrack.detect.factory import make_detector

    d, e = cfg.detect, cfg.enhance
    if d.detector == "blob":
        return make_detector("blob", enhance=e.enabled, polarity=d.polarity, classifier=d.classifier,
                             params=blob_params(cfg))
    from spermtrack.detect.enhance import HLDNBM

    return make_detector("yolo", weights=d.weights, enhance=e.enabled, polarity=d.polarity, tile_px=d.tile_px,
                         overlap=d.tile_overlap, conf=d.conf_threshold, full_frame=d.full_frame_pass,
                         ios_threshold=d.ios_threshold, imgsz=d.imgsz,
                         enhancer=HLDNBM(e.window_px, e.scale_floor, e.z_clip))


def tracker_params(cfg: Config):
    """The associator's :class:`~spermtrack.tracker.associate.TrackerParams` from the ``track``
    section: every key named like a ``TrackerParams`` field, plus ``max_speed_px_frame``
    (``max_gate_px``) and ``delete_after_s`` (``max_age_s``)."""
    from spermtrack.tracker.associate import TrackerParams

    t = cfg.track
    keys = {f.name for f in dataclasses.fields(t)}
    same = {f.name: getattr(t, f.name) for f in dataclasses.fields(TrackerParams) if f.name in keys}
    return TrackerParams(**same, max_age_s=t.delete_after_s, max_gate_px=t.max_speed_px_frame)


def refine_params(cfg: Config):
    """The offline refinement's :class:`~spermtrack.tracker.refine.RefineParams` from
    ``track.refine`` (same names); whether to stitch is ``cfg.track.stitch``."""
    from spermtrack.tracker.refine import RefineParams

    return RefineParams(**dataclasses.asdict(cfg.track.refine))
