"""The mediaflow worker: runs a Workflow's FFmpeg tasks on one input object.

Entry point: ``mediaflow-worker`` (``mediaflow_worker.cli:main``).
"""

from mediaflow_api import __version__

__all__ = ["__version__"]
