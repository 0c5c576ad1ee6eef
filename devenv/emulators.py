"""Start and stop the local emulators: Azurite (Azure Blob Storage) and moto in server mode (AWS).

Both listen on 127.0.0.1 only. Used by the tests, `make up` and the benchmark; never shipped to Lambda.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

# The well-known Azurite development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

REPO_ROOT = Path(__file__).resolve().parents[1]


class EmulatorError(RuntimeError):
    """An emulator did not start or answer."""


def read_list_sas(account: str, key: str, hours: float = 12) -> str:
    """An account SAS token that reads and lists every container and blob of an emulator's account."""
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    return generate_account_sas(
        account,
        key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=hours),
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(f"{url}: process exited with {process.returncode}; log: {log}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers, even if with an error status
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise EmulatorError(f"{url}: no answer within {timeout:.0f} s; log: {log}")


@dataclass
class _Process:
    """A child process on a loopback port, stopped by its process id."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                # SIGKILL always ends it, but a loaded machine can take longer than 10 s to tear down a
                # moto holding gigabytes (the fault suite's teardown failed so once): wait for it.
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def importable_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with the checkout on PYTHONPATH, so `python -m devenv.<module>` runs from any directory (devenv/
    is a folder of the checkout, not an installed package: it never ships)."""
    paths = [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = importable_env(env)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=log.parent
        )


class MotoServer(_Process):
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget every resource (and free the memory moto holds for stored objects)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).close()

    @classmethod
    def start(cls, state_dir: Path, port: int | None = None, timeout: float = 60) -> MotoServer:
        port = port or free_port()
        env = dict(os.environ)
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        log = state_dir / f"moto-{port}.log"
        command = [sys.executable, "-m", "devenv.moto_main", "-H", "127.0.0.1", "-p", str(port)]
        process = _spawn(command, log, env)
        server = cls("moto", port, process, log)
        try:
            _wait_http(f"{server.endpoint}/moto-api/", process, log, timeout)
        except EmulatorError:
            server.stop()
            raise
        return server


def azurite_binary() -> Path:
    binary = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise EmulatorError(f"{binary} is missing: run `make node` to install Azurite")
    return binary


class Azurite(_Process):
    @property
    def endpoint(self) -> str:
        scheme = "https" if self.extra.get("cert") else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        scheme = "https" if self.extra.get("cert") else "http"
        return (
            f"DefaultEndpointsProtocol={scheme};AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    @classmethod
    def start(
        cls,
        state_dir: Path,
        port: int | None = None,
        *,
        in_memory: bool = True,
        oauth_cert: Path | None = None,
        oauth_key: Path | None = None,
        timeout: float = 60,
    ) -> Azurite:
        port = port or free_port()
        log = state_dir / f"azurite-{port}.log"
        command = [
            str(azurite_binary()),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ]
        if in_memory:
            command.append("--inMemoryPersistence")
        else:
            command += ["--location", str(state_dir / f"azurite-{port}-data")]
        extra: dict[str, str] = {}
        if oauth_cert and oauth_key:
            command += ["--oauth", "basic", "--cert", str(oauth_cert), "--key", str(oauth_key)]
            extra = {"cert": str(oauth_cert)}
        process = _spawn(command, log, dict(os.environ))
        server = cls("azurite", port, process, log, extra)
        try:
            _wait_port(port, process, log, timeout)
        except EmulatorError:
            server.stop()
            raise
        return server


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(f"port {port}: process exited with {process.returncode}; log: {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise EmulatorError(f"port {port}: nothing listening within {timeout:.0f} s; log: {log}")
