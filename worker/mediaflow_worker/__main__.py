"""``python -m mediaflow_worker``."""

from mediaflow_worker.cli import main

raise SystemExit(main())
