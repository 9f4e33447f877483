"""Small Kubernetes API helpers: every call runs in a thread of the Kubernetes
pool (the client is synchronous; ``pools``), creates treat 409 as "already
there", deletes treat 404 as gone, so each step can be repeated safely."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from mediaflow_api.templates import CLUSTER_PLURAL
from mediaflow_api.templates import PLURAL as TEMPLATE_PLURAL
from mediaflow_api.workflow import GROUP, PLURAL, VERSION
from mediaflow_operator.pools import Pool

T = TypeVar("T")
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = 30


def load_config(connections: int) -> client.ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig ($KUBECONFIG);
    ``connections``: pooled connections, one per thread of the Kubernetes pool
    (fewer would open and discard a connection per call under load)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # Read $KUBECONFIG now: the client library reads it only at import time.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def status_of(exc: BaseException) -> int | None:
    return exc.status if isinstance(exc, ApiException) else None


class Kube:
    """The operator's typed entry points to the API (one shared ApiClient, its
    calls in ``pool``)."""

    def __init__(self, api_client: client.ApiClient, pool: Pool) -> None:
        self.api_client = api_client
        self.pool = pool
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        return await self.pool.run(fn, *args, **kwargs)

    # --- Jobs ---
    async def create_job(
        self, namespace: str, manifest: dict[str, Any], *, dry_run: bool = False
    ) -> str:
        """Create the Job; its UID, or "" if a Job of that name already exists.
        ``dry_run``: the API server validates and admits it (dryRun=All) but
        stores nothing."""
        extra = {"dry_run": "All"} if dry_run else {}
        try:
            created = await self._run(
                self.batch.create_namespaced_job, namespace, manifest, **extra
            )
        except ApiException as exc:
            if exc.status == 409:
                return ""
            raise
        meta = created.metadata
        return str((meta.uid if meta else "") or "-")

    async def job_uid(self, namespace: str, name: str) -> str | None:
        """The UID of the Job ``name``; None when there is none."""
        try:
            job = await self._run(self.batch.read_namespaced_job, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return str((job.metadata.uid if job.metadata else "") or "")

    async def job_exists(self, namespace: str, name: str) -> bool:
        try:
            await self._run(self.batch.read_namespaced_job, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        try:
            await self._run(
                self.batch.patch_namespaced_job,
                name,
                namespace,
                {"metadata": {"annotations": annotations}},
                _content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def delete_job(self, namespace: str, name: str) -> None:
        try:
            await self._run(
                self.batch.delete_namespaced_job,
                name,
                namespace,
                propagation_policy="Background",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        pods = await self._run(
            self.core.list_namespaced_pod,
            namespace,
            label_selector=f"batch.kubernetes.io/job-name={job_name}",
        )
        return [self._plain(p) for p in pods.items]

    def _plain(self, obj: Any) -> dict[str, Any]:
        """A client model as the dict the API server sent."""
        plain: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return plain

    # --- Workflows ---
    async def get_workflow(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: Any = await self._run(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
            )
            return dict(found)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list_workflows(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Workflows of ``namespace``, or of every namespace."""
        result: Any
        if namespace is None:
            result = await self._run(self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)
        else:
            result = await self._run(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL
            )
        return list(result.get("items", []))

    async def patch_workflow_status(
        self, namespace: str, name: str, status: dict[str, Any], *, resource_version: str = ""
    ) -> None:
        """Merge-patch the status (lists are replaced whole). ``resource_version``
        makes it conditional: 409 Conflict if the object changed meanwhile."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            await self._run(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def patch_workflow_metadata(
        self, namespace: str, name: str, metadata: dict[str, Any]
    ) -> None:
        await self._run(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"metadata": metadata},
            _content_type=MERGE_PATCH,
        )

    # --- templates ---
    async def patch_template_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        """Merge-patch a MediaTemplate's (``namespace`` set) or ClusterMediaTemplate's
        status; a template deleted meanwhile is no error."""
        body = {"status": status}
        try:
            if namespace:
                await self._run(
                    self.custom.patch_namespaced_custom_object_status,
                    GROUP,
                    VERSION,
                    namespace,
                    TEMPLATE_PLURAL,
                    name,
                    body,
                    _content_type=MERGE_PATCH,
                )
            else:
                await self._run(
                    self.custom.patch_cluster_custom_object_status,
                    GROUP,
                    VERSION,
                    CLUSTER_PLURAL,
                    name,
                    body,
                    _content_type=MERGE_PATCH,
                )
        except ApiException as exc:
            if exc.status != 404:
                raise

    # --- the API server itself ---
    async def api_server_addresses(self) -> list[str]:
        """Addresses this API server is reached at (the configured host when it is
        an IP, the ``default/kubernetes`` endpoints): notifications must never be
        sent there. Best effort: what cannot be read is left out."""
        found: list[str] = []
        host = urlsplit(self.api_client.configuration.host or "").hostname or ""
        with contextlib.suppress(ValueError):
            found.append(str(ipaddress.ip_address(host)))
        try:
            endpoints = await self._run(
                self.core.read_namespaced_endpoints, "kubernetes", "default"
            )
        except ApiException:
            return found
        for subset in endpoints.subsets or []:
            found.extend(a.ip for a in subset.addresses or [] if a.ip)
        return found

    # --- Secrets ---
    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            secret = await self._run(self.core.read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self._plain(secret)

    async def apply_secret(self, namespace: str, manifest: dict[str, Any]) -> None:
        """Create or replace a Secret (used to mirror the default storage Secret)."""
        name = manifest["metadata"]["name"]
        try:
            await self._run(self.core.create_namespaced_secret, namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await self._run(self.core.replace_namespaced_secret, name, namespace, manifest)

    async def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a Secret; one already gone is fine."""
        try:
            await self._run(self.core.delete_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
