"""The mediaflow operator: Workflows in, Jobs out (see docs/architecture.md).

Run it with ``python -m mediaflow_operator`` or ``mediaflow-operator``; every
kopf handler is in ``handlers.py``.
"""
