"""Association and tracking-quality measurement (detection lives in :mod:`spermtrack.detect`).

Modules are imported on demand (``from spermtrack.tracker import metrics``) so that importing this
package stays cheap: ``metrics`` (HOTA, CLEAR and Identity
through TrackEval) and the associator modules each pull in their own dependencies.
"""
