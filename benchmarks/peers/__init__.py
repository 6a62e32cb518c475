"""Peer trackers for the ID-switch benchmark, each a :class:`spermtrack.tracker.base.Tracker`
(``update(detections, frame)``, ``tracks()``) built from its config in ``benchmarks/configs``."""
