"""Kept for scripts written against earlier versions: ``from spermtrack.analyze import
analyze_video`` still works. The chaining now lives in :mod:`spermtrack.pipeline` and the front
door is ``from spermtrack import analyze_video``."""

from spermtrack.pipeline.analyze import AnalysisResult, analyze_video, check_config, is_complete, output_folder

__all__ = ["AnalysisResult", "analyze_video", "check_config", "is_complete", "output_folder"]
