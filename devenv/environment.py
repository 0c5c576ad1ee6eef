"""The local environment: Azurite and moto server on loopback, `terraform apply` of terraform/envs/local
against moto, and the local runtime as a background daemon. `make up` / `make down` call this module.

Everything it creates lives under `.local/` of the repository:

    .local/deployment.json    endpoints and names (bucket, secret, table, topics, functions, queues) the CLI reads
    .local/pids.json          process ids of what `up` started (moto, Azurite, runtime); `down` stops exactly these
    .local/terraform/         state and provider data of the local root configuration
    .local/logs/              moto, Azurite, terraform, runtime and one log per function

moto keeps everything in memory, so the Terraform state is only valid while the moto process that `up`
started lives: `up` on a half-running environment stops what is left and starts afresh.

    python -m devenv.environment up|down|status
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azs3copy.cli.local_target import LocalEnvironmentError, answers, load_deployment
from devenv.emulators import (
    AZURITE_ACCOUNT,
    REPO_ROOT,
    Azurite,
    EmulatorError,
    MotoServer,
    free_port,
    importable_env,
)

REGION = "us-east-1"
#: What each recorded process's command line contains, so a recycled pid is never signalled.
PROCESS_MARKERS = {
    "moto": "devenv.moto_main",
    "azurite": "azurite",
    "runtime": "devenv.runtime",
}


@dataclass(frozen=True)
class LocalPaths:
    """Where the environment keeps its state: `.local/` of the checkout, or another directory (tests)."""

    root: Path = REPO_ROOT
    state_dir: Path | None = None

    @property
    def state(self) -> Path:
        return self.state_dir or self.root / ".local"

    @property
    def deployment(self) -> Path:
        return self.state / "deployment.json"

    @property
    def pids(self) -> Path:
        return self.state / "pids.json"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def terraform(self) -> Path:
        return self.state / "terraform"

    @property
    def terraformrc(self) -> Path:
        return self.root / ".local" / "terraformrc"  # written by `make tf-config`

    @property
    def tf_root(self) -> Path:
        return self.root / "terraform" / "envs" / "local"


# --- the deployment file ----------------------------------------------------------------------------------


# --- processes --------------------------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def process_alive(name: str, pid: int) -> bool:
    """True if `pid` runs and is the process `up` started under `name` (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return PROCESS_MARKERS.get(name, "") in _cmdline(pid)


def _stop(name: str, pid: int, timeout: float = 15.0) -> bool:
    if not process_alive(name, pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # each was started in its own session: its group is its pid
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(name, pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _read_pids(paths: LocalPaths) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(paths.pids.read_text()).items()}
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


def _record_pid(paths: LocalPaths, name: str, pid: int) -> None:
    pids = _read_pids(paths)
    pids[name] = pid
    _write_json(paths.pids, pids)


# --- status, down, up -------------------------------------------------------------------------------------


def status(paths: LocalPaths | None = None) -> tuple[bool, list[str]]:
    """(all running, one line per component)."""
    paths = paths or LocalPaths()
    pids = _read_pids(paths)
    lines, healthy = [], True
    for name in PROCESS_MARKERS:
        pid = pids.get(name)
        alive = pid is not None and process_alive(name, pid)
        healthy = healthy and alive
        lines.append(f"{name:8} {'running, pid ' + str(pid) if alive else 'not running'}")
    if not paths.deployment.exists():
        healthy = False
        lines.append(f"{paths.deployment} is missing")
    return healthy, lines


def down(paths: LocalPaths | None = None, say: Callable[[str], None] = print) -> None:
    """Stop what `up` started (by the recorded process ids) and remove the state that died with moto."""
    paths = paths or LocalPaths()
    pids = _read_pids(paths)
    stopped = []
    for name in ("runtime", "azurite", "moto"):
        pid = pids.get(name)
        if pid is not None and _stop(name, pid):
            stopped.append(f"{name} (pid {pid})")
    for path in (
        paths.deployment,
        paths.pids,
        paths.terraform / "local.tfstate",
        paths.terraform / "local.tfstate.backup",
    ):
        path.unlink(missing_ok=True)
    say(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


def _terraform(paths: LocalPaths, args: list[str], log: Path) -> str:
    if not paths.terraformrc.exists():
        raise LocalEnvironmentError(f"{paths.terraformrc} is missing: run `make tf-config` first")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(
        TF_CLI_CONFIG_FILE=str(paths.terraformrc),
        TF_IN_AUTOMATION="1",
        TF_DATA_DIR=str(paths.terraform / "data"),
        TF_INPUT="0",
    )
    command = ["terraform", f"-chdir={paths.tf_root}", *args]
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=out, text=True, check=False)
        out.write(result.stdout)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise LocalEnvironmentError(f"terraform {args[0]} failed (log: {log}):\n{tail}")
    return result.stdout


def _port(variable: str) -> int:
    value = os.environ.get(variable)
    return int(value) if value else free_port()


def up(paths: LocalPaths | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Start everything and write the deployment file; if it is all running already, say so and return it."""
    paths = paths or LocalPaths()
    healthy, _ = status(paths)
    if healthy:
        deployment = load_deployment(paths.deployment)
        if answers(deployment["aws_endpoint"] + "/moto-api/") and answers(
            deployment["runtime_url"] + "/local/health"
        ):
            say(f"already up: {paths.deployment} (`make down` stops it)")
            return deployment
    if _read_pids(paths) or paths.deployment.exists():
        say("a previous local environment is partly running or stale: stopping it first")
        down(paths, say)
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.terraform.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        moto = MotoServer.start(paths.logs, _port("AZS3COPY_MOTO_PORT"))
        _record_pid(paths, "moto", moto.pid)
        azurite = Azurite.start(paths.logs, _port("AZS3COPY_AZURITE_PORT"))
        _record_pid(paths, "azurite", azurite.pid)
        say(f"moto server {moto.endpoint} (pid {moto.pid}), Azurite {azurite.endpoint} (pid {azurite.pid})")

        tf_log = paths.logs / "terraform.log"
        say(f"terraform apply of {paths.tf_root.relative_to(paths.root)} (about a minute; log {tf_log})")
        _terraform(
            paths,
            [
                "init",
                "-input=false",
                "-reconfigure",
                f"-backend-config=path={paths.terraform / 'local.tfstate'}",
            ],
            tf_log,
        )
        _terraform(
            paths, ["apply", "-auto-approve", "-input=false", f"-var=aws_endpoint={moto.endpoint}"], tf_log
        )
        outputs = {
            k: v["value"] for k, v in json.loads(_terraform(paths, ["output", "-json"], tf_log)).items()
        }

        runtime_port = _port("AZS3COPY_RUNTIME_PORT")
        runtime_log = paths.logs / "runtime.log"
        with runtime_log.open("ab") as out:
            runtime = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devenv.runtime",
                    "--endpoint",
                    moto.endpoint,
                    "--region",
                    str(outputs.get("region", REGION)),
                    "--port",
                    str(runtime_port),
                    "--log-dir",
                    str(paths.logs),
                    "--lambdas",
                    str(paths.root / "lambdas"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=paths.root,
                env=importable_env(dict(os.environ)),
            )
        _record_pid(paths, "runtime", runtime.pid)
        runtime_url = f"http://127.0.0.1:{runtime_port}"
        deadline = time.monotonic() + 60
        while not answers(runtime_url + "/local/health"):
            if runtime.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(runtime_log.read_text(errors="replace").splitlines()[-15:])
                raise LocalEnvironmentError(f"the local runtime did not start (log: {runtime_log}):\n{tail}")
            time.sleep(0.2)
        deployment = {
            "kind": "local",
            "region": outputs.get("region", REGION),
            "aws_endpoint": moto.endpoint,
            "runtime_url": runtime_url,
            "azure": {
                "account_url": azurite.endpoint,
                "account_name": AZURITE_ACCOUNT,
                "connection_string": azurite.connection_string,
                "note": "Azurite's well-known development account (public, not a secret)",
            },
            "bucket": outputs["bucket"],
            "secret_id": outputs["secret_id"],
            "ledger_table": outputs["ledger_table"],
            "kms_key_arn": outputs.get("kms_key_arn"),
            "topic_arns": outputs.get("topic_arns", {}),
            "function_names": outputs["function_names"],
            "function_arns": outputs.get("function_arns", {}),
            "dlq_urls": outputs.get("dlq_urls", {}),
            "queue_urls": outputs.get("queue_urls", {}),
            "schedule_name": outputs.get("schedule_name"),
            "report_prefix": "_azs3copy/reports/",
            "logs": str(paths.logs),
            "pids": _read_pids(paths),
        }
        _write_json(paths.deployment, deployment)
    except BaseException:  # a failed apply, an unexpected output, Ctrl-C: nothing is left running
        down(paths, lambda _: None)
        raise
    say(f"up in {time.monotonic() - started:.0f} s: runtime {runtime_url}, deployment {paths.deployment}")
    return deployment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.environment")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="where to keep state, pids and logs (default ROOT/.local)"
    )
    args = parser.parse_args(argv)
    paths = LocalPaths(args.root.resolve(), args.state_dir.resolve() if args.state_dir else None)
    try:
        if args.action == "up":
            up(paths)
        elif args.action == "down":
            down(paths)
        else:
            healthy, lines = status(paths)
            print("\n".join(lines))
            return 0 if healthy else 1
    except LocalEnvironmentError as error:
        print(f"azs3copy: {error}", file=sys.stderr)
        return 1
    except EmulatorError as error:
        print(f"azs3copy: an emulator did not start: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
