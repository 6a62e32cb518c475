"""Detection, association and tracking-quality measurement.

Modules are imported on demand (``from spermtrack.tracker import metrics``) so that importing this
package stays cheap: ``enhance`` (HLDNBM background model), ``metrics`` (HOTA, CLEAR and Identity
through TrackEval) and the detector and associator modules each pull in their own dependencies.
"""
