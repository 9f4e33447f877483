"""Every ffmpeg and ffprobe command the worker runs, built as argument lists
(pure: no I/O, unit tested).

One module per task family builds that family's whole command: ``transcode``
(with ``watermark`` for its overlays), ``snapshot``, ``sprite``,
``animated_image``, ``adaptive_streaming``, ``analysis``; ``ffprobe`` holds
every probe. ``common`` has what every command shares (the start of the
command, restricted inputs, limits, sizes) and ``codecs`` the encoder and
container tables. The task modules (``mediaflow_worker.tasks``) decide what to
run and run it; they do not assemble arguments.
"""
