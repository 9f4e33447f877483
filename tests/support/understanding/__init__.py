"""Media with known content for the understanding tasks' tests and the
``make bench`` measurements: one module per task type (``quality``,
``cover``, ``ocr``, ``speech``, ``moderation``), each making its clips with
ffmpeg (and espeak-ng for speech) from nothing but the Debian packages
``scripts/tools.sh`` installs, and knowing what they contain."""
