"""The local runtime: plays AWS Lambda, SNS's delivery to it and EventBridge Scheduler for what Terraform
deployed on the moto server (which stores functions, subscriptions and schedules but runs none of them).

* Functions are read back from moto: handler, environment, timeout, memory, layers, reserved concurrency,
  the event invoke config (retries, event age, on-failure destination) and the tag
  `azs3copy:component`, which names the directory under `lambdas/` that holds the handler code.
* Each SQS event source mapping (a step reading its queue) is served as Lambda serves it: batch size,
  maximum concurrency, visibility timeout, partial batch failures, redrive (devenv.event_sources).
* Each SNS → Lambda subscription, if any, is tapped by an SQS queue (SNS → SQS works on moto); every message
  is turned into the SNS event Lambda would deliver and invoked asynchronously.
* Each function has a pool of warm worker processes (`devenv.worker`) of at most
  min(reserved concurrency, a local cap). An invocation that outlives the function's timeout has its worker
  killed and replaced, and fails with "Task timed out", as on Lambda.
* Asynchronous invocations follow Lambda's retry policy: `maximum_retry_attempts` retries (short local
  delays) with the same request id, then Lambda's on-failure destination record goes to the SQS queue
  configured. Every new event (and every duplicate delivery) gets a fresh request id.
* The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`, RequestResponse, Event, DryRun)
  is served on a loopback port, so boto3's `lambda.invoke` works against it as against AWS.
* Each function URL is served on a loopback port of its own (devenv.function_urls); `GET /local/function-urls`
  lists them.
* Each enabled schedule whose target is a function fires by its expression (`cron`, `rate`, `at`), or on
  demand with `POST /local/schedules/{name}/fire`.

Run it with `python -m devenv.runtime --endpoint http://127.0.0.1:PORT --port N` (`make up` does).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import itertools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from devenv import event_sources
from devenv.cron import Schedule, ScheduleError
from devenv.function_urls import FunctionUrls

log = logging.getLogger("devenv.runtime")

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPONENT_TAG = "azs3copy:component"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
DEFAULT_RETRY_DELAYS = (1.0, 2.0)  # Lambda waits about 1 and 2 minutes; locally seconds do
PACKAGE_SRC = REPO_ROOT / "layers" / "azs3copy" / "src"
WORKER = Path(__file__).resolve().parent / "worker.py"


def default_concurrency_cap() -> int:
    return 2 * (os.cpu_count() or 1) + 2


def aws_client(service: str, endpoint: str, region: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    ).client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32),
    )


# --- what was deployed ------------------------------------------------------------------------------------


@dataclass
class FunctionSpec:
    name: str
    arn: str
    component: str
    code_dir: Path
    handler: str
    runtime: str
    environment: dict[str, str]
    timeout: float
    memory: int
    layers: list[str]
    reserved: int | None
    #: What goes on the worker's sys.path: the deployed function zip when it is one `make function-zips`
    #: built (else `code_dir`), then each deployed layer's `python/` that is pure Python and was built here.
    code_path: Path | None = None
    layer_paths: list[Path] = field(default_factory=list)
    package_from_layer: bool = False  # a deployed layer holds the azs3copy package
    #: What the worker runs, for the log: each layer's name and where its code comes from.
    provenance: list[str] = field(default_factory=list)
    max_retries: int = 2
    max_event_age: int = 21600
    on_failure: str | None = None


@dataclass(frozen=True)
class Subscription:
    arn: str
    topic_arn: str
    function_arn: str


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    group: str
    expression: str
    timezone: str
    function_arn: str
    input: str


def code_sha256(path: Path) -> str:
    """Lambda's CodeSha256 of a zip: the base64 SHA-256 of its bytes."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def built_zips(build_dir: Path | None) -> dict[str, Path]:
    """The zips `make layers function-zips` left in `build_dir`, by their CodeSha256."""
    if build_dir is None:
        return {}
    zips = sorted(build_dir.glob("functions/*.zip")) + sorted(build_dir.glob("layers/*.zip"))
    return {code_sha256(path): path for path in zips}


def _resolve_code(lambda_client: Any, spec: FunctionSpec, digest: str, built: dict[str, Path]) -> None:
    """Run the code Terraform deployed: the function's zip, and each layer that is pure Python (the core
    package), from the build directory when their digests match what the emulator holds. A layer with
    native modules for the Lambda platform (the Azure SDK layer, built for arm64 Linux) cannot load here:
    its pinned packages come from this Python environment, which pins the same versions."""
    deployed = built.get(digest)
    spec.code_path = deployed if deployed is not None else spec.code_dir
    if deployed is None:
        log.warning(
            "function %s: its deployed code is no zip in the build directory (rebuilt since the apply?); "
            "running %s",
            spec.name,
            spec.code_dir,
        )
    spec.provenance.append(f"code {spec.code_path.name}")
    for arn in spec.layers:
        name = arn.rsplit(":", 2)[-2]
        try:
            layer, _, version = arn.rpartition(":")
            layer_digest = lambda_client.get_layer_version(LayerName=layer, VersionNumber=int(version))[
                "Content"
            ]["CodeSha256"]
        except (ClientError, ValueError) as error:
            log.warning("function %s: cannot read layer %s: %s", spec.name, arn, error)
            spec.provenance.append(f"{name} (unreadable)")
            continue
        path = built.get(layer_digest)
        if path is None:
            spec.provenance.append(f"{name} (not built here: this environment's packages)")
            continue
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        native = any(entry.endswith((".so", ".pyd")) or ".so." in entry for entry in names)
        if native:
            spec.provenance.append(f"{name} (native modules for Lambda: this environment's packages)")
            continue
        spec.layer_paths.append(path / "python")
        spec.package_from_layer = spec.package_from_layer or "python/azs3copy/__init__.py" in names
        spec.provenance.append(f"{name} from {path.name}")


def discover_functions(
    lambda_client: Any, lambdas_root: Path, name_prefix: str = "", build_dir: Path | None = None
) -> dict[str, FunctionSpec]:
    """Every deployed function (whose name starts with `name_prefix`) that carries the component tag."""
    specs: dict[str, FunctionSpec] = {}
    built = built_zips(build_dir)
    for page in lambda_client.get_paginator("list_functions").paginate():
        for config in page["Functions"]:
            if not config["FunctionName"].startswith(name_prefix):
                continue
            arn = config["FunctionArn"]
            tags = lambda_client.list_tags(Resource=arn).get("Tags", {})
            component = tags.get(COMPONENT_TAG)
            if not component:
                log.info("function %s has no %s tag; not run locally", config["FunctionName"], COMPONENT_TAG)
                continue
            reserved = lambda_client.get_function_concurrency(FunctionName=config["FunctionName"]).get(
                "ReservedConcurrentExecutions"
            )
            spec = FunctionSpec(
                name=config["FunctionName"],
                arn=arn,
                component=component,
                code_dir=lambdas_root / component,
                handler=config.get("Handler") or "handler.lambda_handler",
                runtime=config.get("Runtime") or "python3.12",
                environment=dict((config.get("Environment") or {}).get("Variables") or {}),
                timeout=float(config.get("Timeout") or 3),
                memory=int(config.get("MemorySize") or 128),
                layers=[layer["Arn"] for layer in config.get("Layers") or []],
                reserved=int(reserved) if reserved is not None else None,
            )
            try:
                invoke_config = lambda_client.get_function_event_invoke_config(
                    FunctionName=config["FunctionName"]
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                invoke_config = {}
            spec.max_retries = int(invoke_config.get("MaximumRetryAttempts", 2))
            spec.max_event_age = int(invoke_config.get("MaximumEventAgeInSeconds", 21600))
            destination = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            spec.on_failure = destination or None
            if not (spec.code_dir / f"{spec.handler.rpartition('.')[0]}.py").exists():
                log.warning("function %s: no handler code in %s", spec.name, spec.code_dir)
            _resolve_code(lambda_client, spec, str(config.get("CodeSha256") or ""), built)
            specs[spec.name] = spec
    return specs


def discover_subscriptions(sns: Any, function_arns: set[str]) -> list[Subscription]:
    found = []
    for page in sns.get_paginator("list_subscriptions").paginate():
        for item in page["Subscriptions"]:
            endpoint = item.get("Endpoint", "")
            unqualified = endpoint.split(":$LATEST")[0]
            if item.get("Protocol") == "lambda" and unqualified in function_arns:
                found.append(Subscription(item["SubscriptionArn"], item["TopicArn"], unqualified))
    return found


def discover_schedules(scheduler: Any, function_arns: set[str]) -> list[ScheduleSpec]:
    found = []
    try:  # every page: a listing holds at most 100 schedules, and other deployments' are listed too
        items = [
            item
            for page in scheduler.get_paginator("list_schedules").paginate()
            for item in page["Schedules"]
        ]
    except ClientError as error:
        log.warning("cannot list schedules: %s", error)
        return []
    for item in items:
        detail = scheduler.get_schedule(Name=item["Name"], GroupName=item.get("GroupName", "default"))
        target = detail.get("Target", {})
        if detail.get("State") != "ENABLED" or target.get("Arn") not in function_arns:
            continue
        found.append(
            ScheduleSpec(
                name=detail["Name"],
                group=detail.get("GroupName", "default"),
                expression=detail["ScheduleExpression"],
                timezone=detail.get("ScheduleExpressionTimezone") or "UTC",
                function_arn=target["Arn"],
                input=target.get("Input") or "{}",
            )
        )
    return found


# --- Lambda's event shapes --------------------------------------------------------------------------------


def sns_event(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The event Lambda delivers for one SNS notification (from the envelope SNS sends to SQS)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope["MessageId"],
                    "TopicArn": envelope["TopicArn"],
                    "Subject": envelope.get("Subject"),
                    "Message": envelope["Message"],
                    "Timestamp": envelope.get("Timestamp") or _now_iso(),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", ""),
                    "SigningCertUrl": envelope.get("SigningCertURL", envelope.get("SigningCertUrl", "")),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", envelope.get("UnsubscribeUrl", "")),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                },
            }
        ]
    }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def failure_record(
    spec: FunctionSpec, job: Job, reply: dict[str, Any], condition: str = "RetriesExhausted"
) -> dict[str, Any]:
    """Lambda's on-failure destination record of an asynchronous invocation."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _now_iso(),
        "requestContext": {
            "requestId": job.request_id,
            "functionArn": f"{spec.arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": job.attempts,
        },
        "requestPayload": job.event,
    }
    if condition == "RetriesExhausted":
        record["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        }
        record["responsePayload"] = {
            "errorMessage": reply.get("errorMessage", ""),
            "errorType": reply.get("errorType", ""),
            "requestId": job.request_id,
            "stackTrace": reply.get("stackTrace", []),
        }
    return record


# --- worker processes -------------------------------------------------------------------------------------


class WorkerTimeout(Exception):
    pass


class WorkerDied(Exception):
    pass


class WorkerProcess:
    """One warm container: a process running `devenv.worker` with the function's environment."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], log_path: Path) -> None:
        self.spec = spec
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            # The worker by path: `-m` would import azs3copy from the core layer, which lacks local/.
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    str(spec.code_path or spec.code_dir),
                    spec.handler,
                    str(request_read),
                    str(response_write),
                ],
                pass_fds=(request_read, response_write),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=spec.code_dir if spec.code_dir.is_dir() else None,
                start_new_session=True,
            )
        os.close(request_read)
        os.close(response_write)
        self.requests = os.fdopen(request_write, "w", encoding="utf-8")
        self.response_fd = response_read
        self.buffer = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            self.requests.write(json.dumps(request) + "\n")
            self.requests.flush()
        except (BrokenPipeError, OSError) as error:
            raise WorkerDied(f"worker exited before the invocation ({error})") from None
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout()
            ready, _, _ = select.select([self.response_fd], [], [], remaining)
            if not ready:
                raise WorkerTimeout()
            chunk = os.read(self.response_fd, 1 << 16)
            if not chunk:
                code = self.process.wait(timeout=5)
                raise WorkerDied(f"Runtime exited with error: exit status {code}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.error("worker %s of %s did not exit after SIGKILL", self.pid, self.spec.name)
        for close in (self.requests.close, lambda: os.close(self.response_fd)):
            try:
                close()
            except OSError:
                pass


# --- one function -----------------------------------------------------------------------------------------


@dataclass
class Job:
    event: Any
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    asynchronous: bool = True
    queued_at: float = field(default_factory=time.time)
    attempts: int = 0
    future: Future[dict[str, Any]] | None = None


class FunctionPool:
    """The warm workers of one function and its asynchronous event queue."""

    def __init__(self, runtime: Runtime, spec: FunctionSpec, size: int) -> None:
        self.runtime = runtime
        self.spec = spec
        self.size = size
        self.jobs: list[tuple[int, int, Job]] = []  # (priority: 0 sync, 1 async; sequence; job)
        self.sequence = itertools.count()
        self.cond = threading.Condition()
        self.pending = 0  # queued, running or waiting for a retry
        self.running = 0
        self.stats: Counter[str] = Counter()
        self.workers: dict[int, WorkerProcess] = {}
        self.stopping = False
        self.threads = [
            threading.Thread(target=self._slot, name=f"{spec.name}-{i}", daemon=True) for i in range(size)
        ]
        for thread in self.threads:
            thread.start()

    # -- entry points
    def submit(self, event: Any, request_id: str | None = None) -> str:
        job = Job(event, request_id or str(uuid.uuid4()))
        with self.cond:
            self.stats["events"] += 1
            self.pending += 1
        if self.size == 0:
            # Reserved concurrency 0: Lambda retries a throttled event until its maximum age, then sends it to
            # the on-failure destination. Locally it goes there at once: nothing would ever run it.
            self.stats["throttles"] += 1
            throttled = {"errorType": "TooManyRequestsException", "errorMessage": "reserved concurrency is 0"}
            self._give_up(job, throttled, "EventAgeExceeded")
            return job.request_id
        self._enqueue(job)
        return job.request_id

    def invoke(self, event: Any) -> dict[str, Any]:
        if self.size == 0:  # reserved concurrency 0: throttled, as Lambda answers a synchronous call
            return {
                "ok": False,
                "errorType": "TooManyRequestsException",
                "errorMessage": "Rate Exceeded. (reserved concurrency is 0)",
            }
        job = Job(event, asynchronous=False, future=Future())
        with self.cond:
            self.pending += 1
        self._enqueue(job)
        assert job.future is not None
        return job.future.result()

    def backlog(self) -> int:
        with self.cond:
            return self.pending

    # -- internals
    def _enqueue(self, job: Job) -> None:
        with self.cond:
            heapq.heappush(self.jobs, (1 if job.asynchronous else 0, next(self.sequence), job))
            self.cond.notify()

    def _take(self) -> Job | None:
        with self.cond:
            while not self.jobs and not self.stopping:
                self.cond.wait()
            if self.stopping:
                return None
            self.running += 1
            return heapq.heappop(self.jobs)[2]

    def _slot(self) -> None:
        worker: WorkerProcess | None = None
        index = threading.current_thread().name
        while True:
            job = self._take()
            if job is None:
                break
            try:
                if job.asynchronous and time.time() - job.queued_at > self.spec.max_event_age:
                    self._give_up(job, {}, "EventAgeExceeded")
                    continue
                if worker is None or worker.process.poll() is not None:
                    worker = WorkerProcess(
                        self.spec, self.runtime.environment_for(self.spec), self._log_path()
                    )
                    with self.cond:
                        self.workers[id(worker)] = worker
                    self.stats["cold_starts"] += 1
                reply, worker = self._run(worker, job)
                self._after(job, reply)
            except Exception:  # a bug here must not take the slot down
                log.exception("slot %s failed on request %s", index, job.request_id)
                self._after(
                    job, {"ok": False, "errorType": "Runtime.Internal", "errorMessage": "local runtime"}
                )
            finally:
                with self.cond:
                    self.running -= 1
        if worker is not None:
            worker.kill()

    def _log_path(self) -> Path:
        return self.runtime.log_dir / f"{self.spec.component}.log"

    def _log_line(self, text: str) -> None:
        with self._log_path().open("a", encoding="utf-8") as out:
            out.write(text + "\n")

    def _run(self, worker: WorkerProcess, job: Job) -> tuple[dict[str, Any], WorkerProcess | None]:
        job.attempts += 1
        self.stats["invocations"] += 1
        started = time.monotonic()
        self._log_line(f"START RequestId: {job.request_id} Version: $LATEST")
        request = {
            "request_id": job.request_id,
            "event": job.event,
            "timeout_ms": int(self.spec.timeout * 1000),
            "function_arn": self.spec.arn,
        }
        kept: WorkerProcess | None = worker
        try:
            reply = worker.invoke(request, self.spec.timeout)
        except WorkerTimeout:
            self.stats["timeouts"] += 1
            worker.kill()
            kept = None
            message = f"{_now_iso()} {job.request_id} Task timed out after {self.spec.timeout:.2f} seconds"
            self._log_line(message)
            reply = {"ok": False, "errorType": "Sandbox.Timedout", "errorMessage": message}
        except WorkerDied as error:
            self.stats["crashes"] += 1
            worker.kill()
            kept = None
            reply = {
                "ok": False,
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {job.request_id} Error: {error}",
            }
        if kept is None:
            with self.cond:
                self.workers.pop(id(worker), None)
        elapsed = (time.monotonic() - started) * 1000
        self._log_line(
            f"END RequestId: {job.request_id}\nREPORT RequestId: {job.request_id}\tDuration: {elapsed:.2f} ms"
            f"\tMemory Size: {self.spec.memory} MB"
        )
        if not reply.get("ok"):
            self.stats["errors"] += 1
        return reply, kept

    def _after(self, job: Job, reply: dict[str, Any]) -> None:
        if job.future is not None:
            job.future.set_result(reply)
            self._done()
            return
        if reply.get("ok"):
            self._done()
            return
        if job.attempts <= self.spec.max_retries:
            delays = self.runtime.retry_delays
            delay = delays[min(job.attempts - 1, len(delays) - 1)] if delays else 0.0
            self.stats["retries"] += 1
            log.info(
                "%s: request %s failed (%s), retry %d in %.1f s",
                self.spec.name,
                job.request_id,
                reply.get("errorType"),
                job.attempts,
                delay,
            )
            timer = threading.Timer(delay, self._enqueue, args=(job,))
            timer.daemon = True
            timer.start()
            return
        self._give_up(job, reply, "RetriesExhausted")

    def _give_up(self, job: Job, reply: dict[str, Any], condition: str) -> None:
        self.stats["dead_letters"] += 1
        log.warning(
            "%s: request %s failed %d time(s) (%s: %s); on-failure destination %s",
            self.spec.name,
            job.request_id,
            job.attempts,
            reply.get("errorType"),
            str(reply.get("errorMessage", ""))[:300],
            self.spec.on_failure,
        )
        try:
            if self.spec.on_failure:
                self.runtime.send_to_destination(
                    self.spec.on_failure, failure_record(self.spec, job, reply, condition)
                )
        finally:
            self._done()

    def _done(self) -> None:
        with self.cond:
            self.pending -= 1

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
            workers = list(self.workers.values())
        for worker in workers:
            worker.kill()


# --- the runtime ------------------------------------------------------------------------------------------


class Runtime:
    def __init__(
        self,
        endpoint: str,
        *,
        region: str = "us-east-1",
        lambdas_root: Path = REPO_ROOT / "lambdas",
        build_dir: Path | None = REPO_ROOT / "build",
        log_dir: Path = REPO_ROOT / ".local" / "logs",
        concurrency_cap: int | None = None,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        poll_seconds: int = 1,
        name_prefix: str = "",
    ) -> None:
        self.name_prefix = name_prefix
        self.endpoint = endpoint
        self.region = region
        self.lambdas_root = lambdas_root
        self.build_dir = build_dir
        self.log_dir = log_dir
        self.cap = concurrency_cap or default_concurrency_cap()
        self.retry_delays = retry_delays
        self.poll_seconds = poll_seconds
        self.functions: dict[str, FunctionSpec] = {}
        self.pools: dict[str, FunctionPool] = {}
        self.subscriptions: list[Subscription] = []
        self.schedules: list[ScheduleSpec] = []
        self.taps: list[tuple[Subscription, str]] = []
        self.event_sources: list[event_sources.QueuePoller] = []
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []
        self.server: ThreadingHTTPServer | None = None
        self._queue_urls: dict[str, str] = {}
        self.ready = threading.Event()
        self._warned: set[str] = set()
        self.function_urls = FunctionUrls(self)

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint, self.region)

    # -- setup
    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.functions = discover_functions(
            self.client("lambda"), self.lambdas_root, self.name_prefix, self.build_dir
        )
        for spec in self.functions.values():
            size = self.cap if spec.reserved is None else min(spec.reserved, self.cap)
            self.pools[spec.name] = FunctionPool(self, spec, size)
            log.info(
                "function %s (%s): handler %s, timeout %.0f s, memory %d MB, %d worker(s), retries %d, "
                "on failure %s, runs %s",
                spec.name,
                spec.component,
                spec.handler,
                spec.timeout,
                spec.memory,
                size,
                spec.max_retries,
                spec.on_failure,
                "; ".join(spec.provenance),
            )
        by_arn = {spec.arn for spec in self.functions.values()}
        self.subscriptions = discover_subscriptions(self.client("sns"), by_arn)
        for subscription in self.subscriptions:
            self.taps.append((subscription, self._tap(subscription)))
        for subscription, queue_url in self.taps:
            self._thread(self._poll, subscription, queue_url, name=f"tap-{subscription.arn[-8:]}")
        self.event_sources = event_sources.start_pollers(
            self.client("lambda"),
            lambda: self.client("sqs"),
            self.pools,
            {spec.arn: spec.name for spec in self.functions.values()},
            self.stopped,
            self.poll_seconds,
        )
        self.schedules = discover_schedules(self.client("scheduler"), by_arn)
        for schedule in self.schedules:
            self._thread(self._cron, schedule, name=f"schedule-{schedule.name}")
        self.function_urls.start(host)
        self.server = ThreadingHTTPServer((host, port), _handler_class(self))
        self.server.daemon_threads = True
        self._thread(self.server.serve_forever, name="invoke-api")
        self.ready.set()
        bound = int(self.server.server_address[1])
        log.info(
            "local runtime ready on http://%s:%d: %d function(s), %d queue(s), %d subscription(s), "
            "%d schedule(s)",
            host,
            bound,
            len(self.functions),
            len(self.event_sources),
            len(self.subscriptions),
            len(self.schedules),
        )
        return bound

    def _thread(self, target: Callable[..., Any], *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _tap(self, subscription: Subscription) -> str:
        """An SQS queue subscribed to the topic in place of the function (created once, reused)."""
        sqs, sns = self.client("sqs"), self.client("sns")
        function = subscription.function_arn.rsplit(":", 1)[-1]
        topic = subscription.topic_arn.rsplit(":", 1)[-1]
        name = f"{function}--{topic}-local-tap"[:80]
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        existing = [
            item
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=subscription.topic_arn
            )
            for item in page["Subscriptions"]
            if item.get("Endpoint") == queue_arn
        ]
        if not existing:
            sns.subscribe(TopicArn=subscription.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return str(queue_url)

    def environment_for(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's environment from moto plus what Lambda's runtime adds."""
        env = dict(spec.environment)
        env.update(FAKE_CREDENTIALS)
        env.update(
            {
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{uuid.uuid4().hex}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                "TZ": ":UTC",
                "LANG": "en_US.UTF-8",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                # The deployed core layer when it was found, else the package's source tree.
                "PYTHONPATH": os.pathsep.join(
                    [str(path) for path in spec.layer_paths]
                    + ([] if spec.package_from_layer else [str(PACKAGE_SRC)])
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if "AWS_ENDPOINT_URL" not in env:
            if spec.name not in self._warned:
                log.warning("function %s has no AWS_ENDPOINT_URL; using %s", spec.name, self.endpoint)
                self._warned.add(spec.name)
            env["AWS_ENDPOINT_URL"] = self.endpoint
        if os.environ.get("AWS_CA_BUNDLE"):
            env["AWS_CA_BUNDLE"] = os.environ["AWS_CA_BUNDLE"]
        if os.environ.get("AZS3COPY_LOCAL_CALL_LOG"):  # the fault suite records every AWS call (worker.py)
            env["AZS3COPY_LOCAL_CALL_LOG"] = os.environ["AZS3COPY_LOCAL_CALL_LOG"]
        return env

    # -- delivery
    def _poll(self, subscription: Subscription, queue_url: str) -> None:
        sqs = self.client("sqs")
        pool = self.pools[subscription.function_arn.rsplit(":", 1)[-1]]
        limit = max(2 * pool.size, 10)
        while not self.stopped.is_set():
            if pool.backlog() >= limit:
                time.sleep(0.05)
                continue
            try:
                response = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self.poll_seconds
                )
            except Exception:
                if self.stopped.is_set():
                    return
                log.exception("polling %s failed", queue_url)
                time.sleep(1)
                continue
            messages = response.get("Messages", [])
            for message in messages:
                try:
                    envelope = json.loads(message["Body"])
                    pool.submit(sns_event(envelope, subscription.arn))
                except (ValueError, KeyError):
                    log.exception("not an SNS envelope on %s: %.200s", queue_url, message.get("Body"))
            if messages:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )

    def _cron(self, schedule: ScheduleSpec) -> None:
        try:
            when = Schedule(schedule.expression, schedule.timezone)
            following = when.next_after(datetime.now(UTC))
        except (ScheduleError, ValueError) as error:
            log.error("schedule %s: %s; it will not fire locally", schedule.name, error)
            return
        while following is not None and not self.stopped.is_set():
            log.info("schedule %s fires next at %s", schedule.name, following.isoformat())
            while not self.stopped.wait(min(30.0, max(0.0, (following - datetime.now(UTC)).total_seconds()))):
                if datetime.now(UTC) >= following:
                    break
            if self.stopped.is_set():
                return
            self.fire(schedule)
            following = when.next_after(following)

    def fire(self, schedule: ScheduleSpec) -> str:
        pool = self.pool_for(schedule.function_arn)
        try:
            payload = json.loads(schedule.input)
        except ValueError:
            payload = schedule.input
        request_id = pool.submit(payload)
        log.info("schedule %s fired %s (request %s)", schedule.name, pool.spec.name, request_id)
        return request_id

    def pool_for(self, name_or_arn: str) -> FunctionPool:
        name = urllib.parse.unquote(name_or_arn)
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else name
        elif ":" in name:
            name = name.split(":", 1)[0]  # name:qualifier
        pool = self.pools.get(name)
        if pool is None:
            raise KeyError(name)
        return pool

    def send_to_destination(self, destination_arn: str, record: dict[str, Any]) -> None:
        service = destination_arn.split(":")[2]
        if service == "sqs":
            sqs = self.client("sqs")
            name = destination_arn.rsplit(":", 1)[-1]
            url = self._queue_urls.get(name) or sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self._queue_urls[name] = url
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
        elif service == "sns":
            self.client("sns").publish(TopicArn=destination_arn, Message=json.dumps(record))
        else:
            log.error("on-failure destination %s is not supported locally", destination_arn)

    # -- state
    def idle(self) -> bool:
        if any(pool.backlog() for pool in self.pools.values()):
            return False
        sqs = self.client("sqs")
        for _, queue_url in self.taps:
            attributes = sqs.get_queue_attributes(
                QueueUrl=queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if int(attributes["ApproximateNumberOfMessages"]) or int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            ):
                return False
        if not all(poller.idle(sqs) for poller in self.event_sources):
            return False
        return not any(pool.backlog() for pool in self.pools.values())

    def stats(self) -> dict[str, Any]:
        return {
            "functions": {
                name: {
                    "component": pool.spec.component,
                    "workers": pool.size,
                    "warm": len(pool.workers),
                    "pending": pool.pending,
                    "running": pool.running,
                    **pool.stats,
                }
                for name, pool in self.pools.items()
            },
            "queues": {
                poller.mapping.queue_arn.rsplit(":", 1)[-1]: {
                    "concurrency": poller.concurrency,
                    **poller.stats,
                }
                for poller in self.event_sources
            },
            "subscriptions": len(self.subscriptions),
            "schedules": [schedule.name for schedule in self.schedules],
        }

    def stop(self) -> None:
        self.stopped.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.function_urls.stop()
        for pool in self.pools.values():
            pool.stop()


# --- the Invoke API ---------------------------------------------------------------------------------------


def _handler_class(runtime: Runtime) -> type[BaseHTTPRequestHandler]:  # noqa: C901 (one branch per Lambda API route the runtime serves)
    class InvokeApi(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "azs3copy-local-runtime"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"Type": "User", "Message": message, "message": message}).encode()
            self._reply(status, body, {"x-amzn-ErrorType": code})

        def do_GET(self) -> None:
            path = urllib.parse.urlparse(self.path).path
            if path == "/local/health":
                self._reply(200, json.dumps({"ready": runtime.ready.is_set()}).encode())
            elif path == "/local/function-urls":
                self._reply(200, json.dumps(runtime.function_urls.urls).encode())
            elif path == "/local/stats":
                self._reply(200, json.dumps({**runtime.stats(), "idle": runtime.idle()}).encode())
            else:
                self._error(404, "ResourceNotFoundException", f"no route {path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urllib.parse.urlparse(self.path).path.strip("/").split("/")
            if (
                len(parts) == 4
                and parts[0] == "2015-03-31"
                and parts[1] == "functions"
                and parts[3] == "invocations"
            ):
                self._invoke(parts[2], body)
            elif len(parts) == 4 and parts[:2] == ["local", "schedules"] and parts[3] == "fire":
                schedule = next((s for s in runtime.schedules if s.name == parts[2]), None)
                if schedule is None:
                    self._error(404, "ResourceNotFoundException", f"schedule {parts[2]} is not enabled here")
                else:
                    self._reply(202, json.dumps({"requestId": runtime.fire(schedule)}).encode())
            else:
                self._error(404, "ResourceNotFoundException", f"no route {self.path}")

        def _invoke(self, name: str, body: bytes) -> None:
            try:
                pool = runtime.pool_for(name)
            except KeyError:
                self._error(
                    404, "ResourceNotFoundException", f"Function not found: {urllib.parse.unquote(name)}"
                )
                return
            try:
                event = json.loads(body) if body.strip() else {}
            except ValueError:
                self._error(400, "InvalidRequestContentException", "Could not parse request body into json")
                return
            kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if kind == "DryRun":
                self._reply(204)
            elif kind == "Event":
                request_id = pool.submit(event)
                self._reply(202, b"", {"x-amzn-RequestId": request_id})
            elif kind == "RequestResponse":
                if pool.size == 0:  # reserved concurrency 0: Lambda throttles every invocation
                    self._error(429, "TooManyRequestsException", "Rate Exceeded. (reserved concurrency is 0)")
                    return
                reply = pool.invoke(event)
                headers = {"X-Amz-Executed-Version": "$LATEST"}
                if reply.get("ok"):
                    payload = reply.get("result")
                else:
                    headers["X-Amz-Function-Error"] = "Unhandled"
                    payload = {k: reply.get(k) for k in ("errorMessage", "errorType", "stackTrace")}
                self._reply(200, json.dumps(payload).encode(), headers)
            else:
                self._error(400, "InvalidParameterValueException", f"invocation type {kind} is not supported")

    return InvokeApi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devenv.runtime", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="moto server URL")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port of the Invoke API (0: any free port)")
    parser.add_argument(
        "--lambdas", type=Path, default=REPO_ROOT / "lambdas", help="handler code by component"
    )
    parser.add_argument("--log-dir", type=Path, default=REPO_ROOT / ".local" / "logs")
    parser.add_argument(
        "--build-dir",
        type=Path,
        help="where `make layers function-zips` put the zips Terraform deployed (default: beside --lambdas)",
    )
    parser.add_argument("--name-prefix", default="", help="run only the functions whose names start with it")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=int(os.environ.get("AZS3COPY_LOCAL_CONCURRENCY") or default_concurrency_cap()),
        help="local cap on the workers of one function (default 2 x cores + 2)",
    )
    parser.add_argument(
        "--retry-delays",
        default=os.environ.get("AZS3COPY_LOCAL_RETRY_DELAYS", ",".join(map(str, DEFAULT_RETRY_DELAYS))),
        help="seconds before the first and second retry of a failed asynchronous invocation",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    runtime = Runtime(
        args.endpoint,
        region=args.region,
        lambdas_root=args.lambdas,
        build_dir=args.build_dir or args.lambdas.resolve().parent / "build",
        log_dir=args.log_dir,
        concurrency_cap=args.max_concurrency,
        retry_delays=tuple(float(x) for x in args.retry_delays.split(",") if x.strip()),
        name_prefix=args.name_prefix,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime.start(args.port, args.host)
    stop.wait()
    log.info("stopping")
    runtime.stop()


if __name__ == "__main__":
    main()
