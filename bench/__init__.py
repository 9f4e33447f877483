"""Benchmarks (`make bench`): the worker against plain FFmpeg, and the whole
pipeline from an upload to a Job on a local stack."""
