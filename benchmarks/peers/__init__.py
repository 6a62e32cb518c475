"""Peer trackers for the ID-switch benchmark, each as ``run(dets_by_frame, n_frames, fps) -> Tracks``."""
