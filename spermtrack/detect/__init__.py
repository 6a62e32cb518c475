"""Detection: HLDNBM enhancement, the self-calibrating blob detector, the sperm-vs-impurity
classifier, sliced YOLO and detector training.

Modules are imported on demand so that importing this package stays cheap:
``enhance`` (HLDNBM background model), ``calibrate`` (operating point from the video itself),
``blob`` (:class:`~spermtrack.detect.blob.BlobDetector`), ``classifier``,
``slicing`` and ``yolo`` (:class:`~spermtrack.detect.yolo.SlicedYoloDetector`), ``train``,
``factory`` (:func:`~spermtrack.detect.factory.make_detector`).
"""
