"""The interface of every tracker, ours and the benchmark's peers: push frames, read tracks.

The caller owns the frame loop (roboflow/trackers' ``BaseTracker``): it decodes and detects, then
hands each frame's :class:`~spermtrack.types.Detections` to :meth:`Tracker.update`, and reads the
Tracks table with :meth:`Tracker.tracks` whenever it likes. A tracker knows nothing of videos or
detectors, so the same loop drives :class:`~spermtrack.tracker.associate.SpermTracker` in the
stream and every peer in ``benchmarks/peers``.

Example:
    >>> trk = SpermTracker(50.0)
    >>> for dets in detections_per_frame:
    ...     trk.update(dets)                 # frames 0, 1, 2, ...
    >>> table = trk.tracks()
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np
import pandas as pd

from spermtrack.errors import ParameterError
from spermtrack.types import Detections


class Tracker(ABC):
    """A multi-object tracker fed one frame at a time.

    Subclasses implement :meth:`_step` (one frame, in order, every frame) and :meth:`tracks`;
    :meth:`update` numbers the frames and fills skipped ones, :meth:`run` is the whole-video loop.
    """

    _next_frame: int = 0  # the frame the next update() is for (an instance attribute once set)

    def update(self, detections: Detections, frame: int | None = None, image: np.ndarray | None = None) -> None:
        """Advance the tracker by one frame.

        Args:
            detections: the frame's detections (an empty :class:`Detections` when there are none).
            frame: 0-based frame index; default: the frame after the previous one (0 first).
                Frames skipped since the previous call are stepped through without detections (time
                must pass for the motion models); going back raises :class:`ParameterError`.
            image: the frame's pixels ``(H, W)``, for trackers that embed appearance; motion-only
                trackers ignore it.
        """
        f = self._next_frame if frame is None else int(frame)
        if f < self._next_frame:
            raise ParameterError(f"frame {f} was pushed after frame {self._next_frame - 1}; "
                                 f"push frames in increasing order")
        if f > self._next_frame:
            empty = Detections.empty()
            for skipped in range(self._next_frame, f):
                self._step(empty, skipped, None)
        self._step(detections, f, image)
        self._next_frame = f + 1

    @abstractmethod
    def _step(self, detections: Detections, frame: int, image: np.ndarray | None) -> None:
        """One frame, called for every frame in increasing order."""

    @abstractmethod
    def tracks(self) -> pd.DataFrame:
        """The Tracks table (:func:`spermtrack.types.make_tracks`) of what was pushed so far.

        It does not end tracking: :meth:`update` may be called again, and the table after the last
        frame is the result. What a row holds and when a track is first reported is the tracker's
        own (see its docstring); track ids may be renumbered from one call to the next.
        """

    def run(self, dets_by_frame: Mapping[int, Detections], n_frames: int | None = None) -> pd.DataFrame:
        """Push frames ``0 .. n_frames - 1`` of a fresh tracker and return :meth:`tracks`.

        Args:
            dets_by_frame: ``{frame (0-based): Detections}``; missing frames have no objects.
            n_frames: number of frames (default: last key + 1).
        """
        if n_frames is None:
            n_frames = (max(dets_by_frame) + 1) if dets_by_frame else 0
        empty = Detections.empty()
        for f in range(int(n_frames)):
            self.update(dets_by_frame.get(f, empty), f)
        return self.tracks()
