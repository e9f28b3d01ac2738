"""Importing this package registers every built-in module family."""
from . import shared, yolov5  # noqa: F401
