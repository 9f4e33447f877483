"""Fixtures for tests that talk to the Workflow API of the local cluster."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client

from tests.support.workflow_api import ensure_namespace, install_crd


@pytest.fixture(scope="module")
def api(kube_cluster: Any) -> client.ApiClient:
    """An admin API client on a cluster with the Workflow CRD installed."""
    api_client: client.ApiClient = kube_cluster.api_client()
    install_crd(api_client)
    return api_client


@pytest.fixture(scope="module")
def namespace(api: client.ApiClient) -> str:
    """A namespace of the test module's own."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ensure_namespace(api, name)
    return name
