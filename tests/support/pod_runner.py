"""A stand-in for the kubelet: runs each pod's containers as local processes.

There is no container runtime on the machines mediaflow is tested on, so this
runner takes the place of the kubelet (and only of the kubelet): the real Job
controller creates pods, the runner runs their container ``command``/``args``
as local processes and writes pod status back, and the real Job controller
turns that status into Job conditions (``Complete``, ``Failed``,
``podFailurePolicy``). It is test infrastructure and lives under ``tests/``.

What it emulates:

- env: ``value``, ``valueFrom`` (secretKeyRef, configMapKeyRef, fieldRef,
  honouring ``optional``) and ``envFrom``;
- volumes: emptyDir, secret, configMap, downwardAPI and projected
  (serviceAccountToken through the TokenRequest API) materialised as files;
- a pod has no mount namespace here, so each ``mountPath`` is *translated*:
  env values and args equal to a mount path, or below one, are rewritten to
  the local directory; the same for ``terminationMessagePath`` and
  ``workingDir``;
- status: ``Running`` with a running container state at start, then
  ``Succeeded``/``Failed`` with ``state.terminated`` (exit code, reason,
  termination message, times) at exit;
- pod deletion and ``activeDeadlineSeconds`` kill the process group.

Init containers run one after another before the containers, which run
concurrently. Images are ignored: commands are looked up on the runner's PATH.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("mediaflow.test.pod_runner")

TERMINATION_MESSAGE_LIMIT = 4096
FALLBACK_LOG_LINES = 80


class PodSetupError(Exception):
    """The pod cannot be started (missing secret key, unsupported volume, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def translate(value: str, mounts: Mapping[str, Path]) -> str:
    """Rewrite a container path to the local directory standing in for its mount.

    The longest matching mount path wins, so ``/scratch/tmp`` under a mount
    at ``/scratch/tmp`` beats one at ``/scratch``.
    """
    for mount_path in sorted(mounts, key=len, reverse=True):
        local = mounts[mount_path]
        if value == mount_path:
            return str(local)
        if value.startswith(mount_path.rstrip("/") + "/"):
            return str(local) + value[len(mount_path.rstrip("/")) :]
    return value


def field_path_value(pod: dict[str, Any], path: str) -> str:
    """Resolve a downward-API ``fieldPath`` against a pod (as a dict)."""
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": "mediaflow-pod-runner",
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.hostIP": "127.0.0.1",
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((meta.get(source) or {}).get(path[len(prefix) + 2 : -2], ""))
        if path == prefix:
            items = sorted((meta.get(source) or {}).items())
            return "\n".join(f'{k}="{v}"' for k, v in items)
    raise PodSetupError("CreateContainerConfigError", f"unsupported fieldPath {path!r}")


@dataclass
class RunningPod:
    namespace: str
    name: str
    uid: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    deleted: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kill(self) -> None:
        with self.lock:
            for process in self.processes:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)


class PodRunner:
    """Watches all pods and runs the pending ones as local processes."""

    def __init__(
        self, api_client: client.ApiClient, workdir: Path, path: str | None = None
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.auth = client.AuthenticationV1Api(api_client)
        self.api_client = api_client
        self.workdir = workdir
        self.path = path or os.environ.get("PATH", "/usr/bin:/bin")
        self._pods: dict[str, RunningPod] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pods_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch_forever, name="pod-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._pods_lock:
            pods = list(self._pods.values())
        for pod in pods:
            pod.deleted.set()
            pod.kill()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        """Where a container's stdout/stderr is kept (the runner's `kubectl logs`)."""
        return self.workdir / namespace / pod / f"{container}.log"

    # -- watching ------------------------------------------------------------------------
    def _watch_forever(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.core.list_pod_for_all_namespaces()
                for pod in pods.items:
                    self._on_pod("ADDED", self.api_client.sanitize_for_serialization(pod))
                version = pods.metadata.resource_version
                stream = watch.Watch()
                for event in stream.stream(
                    self.core.list_pod_for_all_namespaces,
                    resource_version=version,
                    timeout_seconds=30,
                    _request_timeout=40,
                ):
                    if self._stop.is_set():
                        stream.stop()
                        break
                    obj = self.api_client.sanitize_for_serialization(event["object"])
                    self._on_pod(event["type"], obj)
            except ApiException as exc:
                if exc.status != 410:
                    log.warning("pod watch failed: %s", exc)
                    self._stop.wait(1)
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("pod watch interrupted: %s", exc)
                    self._stop.wait(1)

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self._pods_lock:
            running = self._pods.get(uid)
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            if kind == "DELETED":
                with self._pods_lock:
                    self._pods.pop(uid, None)
            if running is not None:
                running.deleted.set()
                running.kill()
            return
        if running is not None or pod["spec"].get("nodeName"):
            return
        if (pod.get("status") or {}).get("phase", "Pending") != "Pending":
            return
        running = RunningPod(meta["namespace"], meta["name"], uid)
        with self._pods_lock:
            self._pods[uid] = running
        threading.Thread(
            target=self._run_pod, args=(pod, running), name=f"pod-{meta['name']}", daemon=True
        ).start()

    # -- running one pod -----------------------------------------------------------------
    def _run_pod(self, pod: dict[str, Any], running: RunningPod) -> None:
        try:
            self._run_pod_inner(pod, running)
        except Exception as exc:
            log.exception("pod %s/%s: runner error", running.namespace, running.name)
            self._patch_status(
                running, {"phase": "Failed", "reason": "RunnerError", "message": str(exc)}
            )
        finally:
            shutil.rmtree(
                self.workdir / running.namespace / running.name / "volumes", ignore_errors=True
            )

    def _run_pod_inner(self, pod: dict[str, Any], running: RunningPod) -> None:
        spec = pod["spec"]
        pod_dir = self.workdir / running.namespace / running.name
        pod_dir.mkdir(parents=True, exist_ok=True)
        started = now()
        try:
            volumes = self._materialise_volumes(pod, pod_dir / "volumes")
        except PodSetupError as exc:
            self._fail_before_start(running, spec, exc)
            return

        deadline = spec.get("activeDeadlineSeconds")
        deadline_at = time.monotonic() + deadline if deadline else None

        for init in spec.get("initContainers") or []:
            try:
                prepared = self._prepare(pod, init, volumes, pod_dir)
            except PodSetupError as exc:
                self._fail_before_start(running, spec, exc)
                return
            self._patch_status(running, {"phase": "Pending", "startTime": started})
            result = self._run_containers(running, [prepared], deadline_at)
            if result[0]["exitCode"] != 0 or running.deleted.is_set():
                self._finish(running, spec, started, result, init_failed=True)
                return

        try:
            prepared_all = [self._prepare(pod, c, volumes, pod_dir) for c in spec["containers"]]
        except PodSetupError as exc:
            self._fail_before_start(running, spec, exc)
            return
        self._patch_status(
            running,
            {
                "phase": "Running",
                "startTime": started,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "conditions": self._conditions(ready=True),
                "containerStatuses": [
                    self._container_status(
                        p["name"], p["image"], {"running": {"startedAt": started}}
                    )
                    for p in prepared_all
                ],
            },
        )
        results = self._run_containers(running, prepared_all, deadline_at)
        self._finish(running, spec, started, results)

    def _run_containers(
        self, running: RunningPod, prepared: list[dict[str, Any]], deadline_at: float | None
    ) -> list[dict[str, Any]]:
        """Start the containers, wait for all of them, return their terminated states."""
        for item in prepared:
            item["startedAt"] = now()
            log_file = item["log"].open("ab")
            try:
                with running.lock:
                    if running.deleted.is_set():
                        item["process"] = None
                        continue
                    try:
                        process = subprocess.Popen(
                            item["argv"],
                            env=item["env"],
                            cwd=item["cwd"],
                            stdout=log_file,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            start_new_session=True,
                        )
                    except OSError as exc:
                        item["process"] = None
                        item["startError"] = str(exc)
                        continue
                    running.processes.append(process)
                    item["process"] = process
            finally:
                log_file.close()
        deadline_hit = False
        results = []
        for item in prepared:
            process = item.get("process")
            if process is None:
                results.append(
                    {
                        "name": item["name"],
                        "image": item["image"],
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": item.get("startError", "pod deleted"),
                        "startedAt": item["startedAt"],
                        "finishedAt": now(),
                    }
                )
                continue
            while process.poll() is None:
                if deadline_at is not None and time.monotonic() > deadline_at and not deadline_hit:
                    deadline_hit = True
                    running.kill()
                if running.deleted.wait(0.1):
                    running.kill()
            code = process.returncode
            if code < 0:  # killed by a signal: report like a container runtime does
                code = 128 - code
            message = self._termination_message(item, code)
            results.append(
                {
                    "name": item["name"],
                    "image": item["image"],
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "message": message,
                    "startedAt": item["startedAt"],
                    "finishedAt": now(),
                }
            )
        if deadline_hit:
            for result in results:
                result["deadlineExceeded"] = True
        return results

    def _termination_message(self, item: dict[str, Any], code: int) -> str:
        path: Path = item["terminationFile"]
        message = ""
        with contextlib.suppress(OSError):
            message = path.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode("utf-8", "replace")
        if not message and code != 0 and item["policy"] == "FallbackToLogsOnError":
            with contextlib.suppress(OSError):
                lines = item["log"].read_bytes().decode("utf-8", "replace").splitlines()
                message = "\n".join(lines[-FALLBACK_LOG_LINES:])[-TERMINATION_MESSAGE_LIMIT:]
        return message

    def _finish(
        self,
        running: RunningPod,
        spec: dict[str, Any],
        started: str,
        results: list[dict[str, Any]],
        init_failed: bool = False,
    ) -> None:
        if running.deleted.is_set():
            return  # the pod object is gone; nothing to report to
        deadline = any(r.get("deadlineExceeded") for r in results)
        ok = not init_failed and not deadline and all(r["exitCode"] == 0 for r in results)
        statuses = [
            self._container_status(
                r["name"],
                r["image"],
                {
                    "terminated": {
                        key: r[key]
                        for key in ("exitCode", "reason", "message", "startedAt", "finishedAt")
                        if r.get(key) not in (None, "") or key == "exitCode"
                    }
                },
            )
            for r in results
        ]
        status: dict[str, Any] = {
            "phase": "Succeeded" if ok else "Failed",
            "startTime": started,
            "conditions": self._conditions(ready=False),
            ("initContainerStatuses" if init_failed else "containerStatuses"): statuses,
        }
        if deadline:
            status["reason"] = "DeadlineExceeded"
            status["message"] = (
                "Pod was active on the node longer than the specified deadline "
                f"({spec.get('activeDeadlineSeconds')}s)"
            )
        self._patch_status(running, status)

    def _fail_before_start(
        self, running: RunningPod, spec: dict[str, Any], exc: PodSetupError
    ) -> None:
        log.warning("pod %s/%s cannot start: %s", running.namespace, running.name, exc)
        stamp = now()
        terminated = {
            "terminated": {
                "exitCode": 128,
                "reason": exc.reason,
                "message": exc.message,
                "startedAt": stamp,
                "finishedAt": stamp,
            }
        }
        # A kubelet would keep such a pod Pending and retry; failing it is more
        # useful in tests, and the Job controller treats it like any failed pod.
        self._patch_status(
            running,
            {
                "phase": "Failed",
                "reason": exc.reason,
                "message": exc.message,
                "conditions": self._conditions(ready=False),
                "containerStatuses": [
                    self._container_status(c["name"], c.get("image", ""), terminated)
                    for c in spec["containers"]
                ],
            },
        )

    @staticmethod
    def _container_status(name: str, image: str, state: dict[str, Any]) -> dict[str, Any]:
        running = "running" in state
        return {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": state,
        }

    @staticmethod
    def _conditions(ready: bool) -> list[dict[str, Any]]:
        stamp = now()
        flag = "True" if ready else "False"
        return [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
            {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": stamp},
            {"type": "Ready", "status": flag, "lastTransitionTime": stamp},
        ]

    def _patch_status(self, running: RunningPod, status: dict[str, Any]) -> None:
        try:
            self.core.patch_namespaced_pod_status(
                running.name,
                running.namespace,
                {"status": status},
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning(
                    "pod %s/%s: status patch failed: %s", running.namespace, running.name, exc
                )

    # -- env and volumes -----------------------------------------------------------------
    def _secret(self, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404 and optional:
                return None
            if exc.status == 404:
                raise PodSetupError(
                    "CreateContainerConfigError", f'secret "{name}" not found'
                ) from exc
            raise
        return {
            k: base64.b64decode(v).decode("utf-8", "replace")
            for k, v in (secret.data or {}).items()
        }

    def _config_map(self, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        try:
            config_map = self.core.read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status == 404 and optional:
                return None
            if exc.status == 404:
                raise PodSetupError(
                    "CreateContainerConfigError", f'configmap "{name}" not found'
                ) from exc
            raise
        return dict(config_map.data or {})

    def _env(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "secretRef" in source:
                ref = source["secretRef"]
                data = self._secret(namespace, ref["name"], bool(ref.get("optional")))
            else:
                ref = source["configMapRef"]
                data = self._config_map(namespace, ref["name"], bool(ref.get("optional")))
            env.update({prefix + k: v for k, v in (data or {}).items()})
        for var in container.get("env") or []:
            name = var["name"]
            if "valueFrom" not in var:
                env[name] = _expand(var.get("value", ""), env)
                continue
            source = var["valueFrom"]
            if "secretKeyRef" in source or "configMapKeyRef" in source:
                is_secret = "secretKeyRef" in source
                ref = source["secretKeyRef" if is_secret else "configMapKeyRef"]
                optional = bool(ref.get("optional"))
                data = (self._secret if is_secret else self._config_map)(
                    namespace, ref["name"], optional
                )
                if data is None or ref["key"] not in data:
                    if optional:
                        continue
                    kind = "secret" if is_secret else "configmap"
                    raise PodSetupError(
                        "CreateContainerConfigError",
                        f"couldn't find key {ref['key']} in {kind.title()} "
                        f"{namespace}/{ref['name']}",
                    )
                env[name] = data[ref["key"]]
            elif "fieldRef" in source:
                env[name] = field_path_value(pod, source["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in source:
                env[name] = "0"
            else:
                raise PodSetupError(
                    "CreateContainerConfigError", f"unsupported valueFrom in env {name}"
                )
        return env

    def _materialise_volumes(self, pod: dict[str, Any], root: Path) -> dict[str, Path]:
        namespace = pod["metadata"]["namespace"]
        volumes: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            target = root / volume["name"]
            target.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                pass
            elif "secret" in volume:
                source = volume["secret"]
                data = self._secret(namespace, source["secretName"], bool(source.get("optional")))
                _write_items(target, data or {}, source.get("items"))
            elif "configMap" in volume:
                source = volume["configMap"]
                data = self._config_map(namespace, source["name"], bool(source.get("optional")))
                _write_items(target, data or {}, source.get("items"))
            elif "downwardAPI" in volume:
                for item in volume["downwardAPI"].get("items") or []:
                    _write_file(
                        target / item["path"], field_path_value(pod, item["fieldRef"]["fieldPath"])
                    )
            elif "projected" in volume:
                self._materialise_projected(pod, volume["projected"], target)
            else:
                kind = next((k for k in volume if k != "name"), "unknown")
                raise PodSetupError(
                    "CreateContainerConfigError",
                    f"volume type {kind} is not supported by the test pod runner",
                )
            volumes[volume["name"]] = target
        return volumes

    def _materialise_projected(
        self, pod: dict[str, Any], projected: dict[str, Any], target: Path
    ) -> None:
        namespace = pod["metadata"]["namespace"]
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                spec = source["serviceAccountToken"]
                request = client.AuthenticationV1TokenRequest(
                    spec=client.V1TokenRequestSpec(
                        audiences=[spec["audience"]] if spec.get("audience") else [],
                        expiration_seconds=spec.get("expirationSeconds", 3600),
                        bound_object_ref=client.V1BoundObjectReference(
                            kind="Pod",
                            api_version="v1",
                            name=pod["metadata"]["name"],
                            uid=pod["metadata"]["uid"],
                        ),
                    )
                )
                token = self.core.create_namespaced_service_account_token(
                    pod["spec"].get("serviceAccountName") or "default", namespace, request
                )
                _write_file(target / spec["path"], token.status.token)
            elif "configMap" in source:
                ref = source["configMap"]
                data = self._config_map(namespace, ref["name"], bool(ref.get("optional")))
                _write_items(target, data or {}, ref.get("items"))
            elif "secret" in source:
                ref = source["secret"]
                data = self._secret(namespace, ref["name"], bool(ref.get("optional")))
                _write_items(target, data or {}, ref.get("items"))
            elif "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    if "fieldRef" in item:
                        _write_file(
                            target / item["path"],
                            field_path_value(pod, item["fieldRef"]["fieldPath"]),
                        )

    def _prepare(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        volumes: dict[str, Path],
        pod_dir: Path,
    ) -> dict[str, Any]:
        """Resolve one container into argv, env and cwd with container paths translated."""
        name = container["name"]
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            local = volumes.get(mount["name"])
            if local is None:
                raise PodSetupError(
                    "CreateContainerConfigError", f"volumeMount {mount['name']} has no volume"
                )
            if mount.get("subPath"):
                local = local / mount["subPath"]
                local.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = local
        termination_path = container.get("terminationMessagePath") or "/dev/termination-log"
        termination_file = pod_dir / f"{name}.termination-log"
        termination_file.unlink(missing_ok=True)
        termination_file.touch()
        mounts[termination_path] = termination_file

        env = self._env(pod, container)
        env = {k: translate(v, mounts) for k, v in env.items()}
        base = {
            "PATH": self.path,
            "HOSTNAME": pod["metadata"]["name"],
            "HOME": str(pod_dir),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        command = [translate(_expand(a, env), mounts) for a in container.get("command") or []]
        args = [translate(_expand(a, env), mounts) for a in container.get("args") or []]
        argv = command + args
        if not argv:
            raise PodSetupError(
                "CreateContainerConfigError",
                f"container {name} has no command (images are not run)",
            )
        resolved = shutil.which(argv[0], path=self.path) if "/" not in argv[0] else argv[0]
        if resolved is None:
            raise PodSetupError(
                "StartError", f"executable {argv[0]!r} not found on the runner's PATH"
            )
        argv[0] = resolved
        cwd = translate(container.get("workingDir") or "", mounts) or str(pod_dir)
        log_path = self.log_path(pod["metadata"]["namespace"], pod["metadata"]["name"], name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "name": name,
            "image": container.get("image", ""),
            "argv": argv,
            "env": {**base, **env},
            "cwd": cwd,
            "log": log_path,
            "terminationFile": termination_file,
            "policy": container.get("terminationMessagePolicy", "File"),
        }


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion (``$$`` escapes)."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            end = value.index(")", i)
            name = value[i + 2 : end]
            out.append(env.get(name, value[i : end + 1]))
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _write_file(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def _write_items(target: Path, data: Mapping[str, str], items: list[dict[str, Any]] | None) -> None:
    if items:
        for item in items:
            if item["key"] in data:
                _write_file(target / item["path"], data[item["key"]])
    else:
        for key, value in data.items():
            _write_file(target / key, value)
