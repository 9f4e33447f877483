"""A task's reference to a reusable template (``MediaTemplate`` or
``ClusterMediaTemplate``, see ``mediaflow_api.templates``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mediaflow_api.tasks.common import SpecModel

TEMPLATE_KIND = "MediaTemplate"
CLUSTER_TEMPLATE_KIND = "ClusterMediaTemplate"
TemplateKind = Literal["MediaTemplate", "ClusterMediaTemplate"]
# A Kubernetes object name (DNS subdomain).
TEMPLATE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class TemplateReference(SpecModel):
    """Which template holds the task's settings."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=TEMPLATE_NAME_PATTERN,
        description="Name of the template.",
    )
    kind: TemplateKind = Field(
        default="MediaTemplate",
        description=(
            "MediaTemplate (in the Workflow's namespace) or ClusterMediaTemplate "
            "(cluster-wide, the platform's presets)."
        ),
    )
