"""Notifications: what happened to an object, announced to the Workflow's sinks.

``events`` builds the CloudEvents (pure), ``outbox`` keeps them durably in a
JetStream stream until delivered, ``deliver`` sends them per sink in order per
object, through ``webhook`` (signed HTTP, ``signing``, ``egress``) or NATS.
"""
