"""Measuring results against a truth: tracking (HOTA, CLEAR, Identity via TrackEval:
:mod:`~spermtrack.evaluate.metrics`), detection precision / recall
(:mod:`~spermtrack.evaluate.detmetrics`) and a whole analysis against a synthetic video's exact
truth (:mod:`~spermtrack.evaluate.truth`). Imported on demand (TrackEval is heavy)."""
