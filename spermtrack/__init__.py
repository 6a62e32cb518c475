"""spermtrack: detect, track and grade spermatozoa in microscope videos."""

__version__ = "0.1.0"
