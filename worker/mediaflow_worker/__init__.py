"""The mediaflow worker: runs a Workflow's FFmpeg tasks on one input object.

Entry point: ``mediaflow-worker`` (``mediaflow_worker.cli:main``).
"""

__version__ = "0.1.0"
