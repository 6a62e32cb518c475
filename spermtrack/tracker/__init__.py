"""Association: detections of consecutive frames into tracks (motion, gating, appearance), then the
offline refine step (stitching, gap filling, smoothing). Detection lives in
:mod:`spermtrack.detect`, tracking-quality measurement in :mod:`spermtrack.evaluate`, the stream
loop that pushes decoded frames through both in :mod:`spermtrack.pipeline.stream`.

Modules are imported on demand so that importing this package stays cheap.
"""
