"""The command line that runs the sandbox inside a Docker or Podman container.

Why an OCI runtime at all: where the kernel will not give an ordinary process namespaces (a
locked-down host, macOS with Docker Desktop), a container engine that the user already runs can.
The container is made as tight as the runtime allows: no network, a read-only image, a
size-capped tmpfs as the only writable place, memory, pids and CPU limits, every capability
dropped, ``no-new-privileges``, the ``nobody`` uid, a private IPC namespace, removed on exit.
The image must have ``python3`` (>= 3.8) on its PATH; it is never pulled implicitly.
"""

from __future__ import annotations

import os
import subprocess

IMAGE_ENV = "TAXCHECK_SANDBOX_IMAGE"
DEFAULT_IMAGE = "python:3.12-slim"
# What a container client needs from the caller's environment; nothing else (no API keys).
_CLIENT_ENV = (
    "PATH", "HOME", "USER", "LANG", "TMPDIR", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONTEXT",
    "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONTAINER_HOST", "CONTAINER_CONNECTION",
    "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF",
)


def image() -> str:
    """The image the sandbox runs in: ``$TAXCHECK_SANDBOX_IMAGE`` or a slim official Python."""
    return os.environ.get(IMAGE_ENV, "").strip() or DEFAULT_IMAGE


def client_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in _CLIENT_ENV}


def command(runtime: str, *, image: str, name: str, memory_mb: int, disk_mb: int, pids: int = 64, cpus: float = 1.0) -> list[str]:
    """``runtime run …`` up to and including the image; the caller appends the command.

    Memory covers the worker's limit, the tmpfs (its pages are charged to the container) and
    the supervisor; swap is refused so the limit is a limit.
    """
    memory = f"{memory_mb + disk_mb + 128}m"
    return [
        runtime, "run", "--rm", "-i", "--name", name, "--pull", "never",
        "--network", "none", "--ipc", "none", "--read-only",
        "--tmpfs", f"/tmp:rw,nosuid,nodev,size={disk_mb}m,mode=1777",
        "--memory", memory, "--memory-swap", memory, "--pids-limit", str(pids), "--cpus", str(cpus),
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--user", "65534:65534", "--workdir", "/tmp",
        "--env", "HOME=/tmp", "--env", "TMPDIR=/tmp", "--env", "LANG=C.UTF-8",
        image,
    ]


def remove(runtime: str, name: str) -> None:
    """Kill and remove a container whose client was stopped (stopping a client does not)."""
    try:
        subprocess.run([runtime, "rm", "-f", name], env=client_env(), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass
