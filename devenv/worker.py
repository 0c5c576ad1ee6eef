"""One warm "container" of a function: a process that imports the handler once and then runs invocations
that the local runtime sends it, one at a time, as Lambda's runtime does.

    python .../devenv/worker.py CODE HANDLER REQUEST_FD RESPONSE_FD

CODE is the function's zip or directory. The worker imports nothing of azs3copy itself, so the package the
handler imports is the one on PYTHONPATH: the deployed core layer's, as on Lambda.

Requests and responses are JSON lines on two pipes (stdout and stderr stay free for the function's logs):

    → {"request_id", "event", "timeout_ms", "function_arn"}
    ← {"ok": true, "result": …} | {"ok": false, "errorType", "errorMessage", "stackTrace"}

The process's environment is the function's own (the runtime builds it); nothing here reads the runtime's.
"""

from __future__ import annotations

import sys

if sys.path and sys.path[0] and __name__ == "__main__":
    del sys.path[0]  # run by path: its own directory (devenv/) is no place to import from

import importlib
import json
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class LocalLambdaContext:
    """What Lambda's Python runtime hands a handler, as far as handlers read it."""

    aws_request_id: str
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @classmethod
    def starting_now(
        cls,
        function_name: str,
        timeout_seconds: float = 900.0,
        *,
        request_id: str | None = None,
        memory_mb: int = 1024,
        region: str = "us-east-1",
        account: str = "123456789012",
    ) -> LocalLambdaContext:
        """A context for one invocation that starts now (for driving a handler directly)."""
        return cls(
            aws_request_id=request_id or str(uuid.uuid4()),
            function_name=function_name,
            function_version="$LATEST",
            invoked_function_arn=f"arn:aws:lambda:{region}:{account}:function:{function_name}",
            memory_limit_in_mb=memory_mb,
            log_group_name=f"/aws/lambda/{function_name}",
            log_stream_name="local",
            deadline=time.monotonic() + timeout_seconds,
        )


def load_handler(code_dir: str, handler: str) -> Callable[[Any, Any], Any]:
    """`module.function` from CODE_DIR, like Lambda's `handler` setting."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {handler!r} must be module.function")
    sys.path.insert(0, code_dir)
    module = importlib.import_module(module_name)
    function = getattr(module, function_name)
    if not callable(function):
        raise TypeError(f"handler {handler!r} is not callable")
    return function  # type: ignore[no-any-return]


def _error(error: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error)[-20:],
    }


def serve(code_dir: str, handler_name: str, requests: Any, responses: Any) -> None:
    init_error: dict[str, Any] | None = None
    try:
        handler = load_handler(code_dir, handler_name)
    except Exception as error:  # Lambda reports an init failure on every invocation
        init_error = _error(error)
        init_error["errorType"] = f"Runtime.ImportModuleError ({init_error['errorType']})"
        traceback.print_exc()
    env = os.environ
    for line in requests:
        request = json.loads(line)
        if init_error is not None:
            reply = init_error
        else:
            context = LocalLambdaContext(
                aws_request_id=request["request_id"],
                function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
                function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                invoked_function_arn=request.get("function_arn", ""),
                memory_limit_in_mb=int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
                log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
                log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
                deadline=time.monotonic() + request["timeout_ms"] / 1000.0,
            )
            try:
                result = handler(request["event"], context)
                reply = {"ok": True, "result": json.loads(json.dumps(result, default=str))}
            except Exception as error:
                traceback.print_exc()
                reply = _error(error)
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(json.dumps(reply) + "\n")
        responses.flush()


def record_aws_calls(path: str) -> None:
    """Append every AWS API call this process makes to `path` as a JSON line (function, service, operation,
    whether it named an object version, whether a write set tags, the operations of a DynamoDB transaction): what the least-privilege
    test compares with each function's IAM policy. Local instrumentation only (AZS3COPY_LOCAL_CALL_LOG)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        entry = {
            "function": function,
            "service": client.meta.service_model.service_name,
            "operation": operation,
            "version": bool(params.get("VersionId")),
            # tags set by the write itself (PutObject, CreateMultipartUpload): S3 asks s3:PutObjectTagging too
            "tagging": isinstance(params.get("Tagging"), str) and bool(params["Tagging"]),
            "transact": sorted({next(iter(item)) for item in params.get("TransactItems", []) if item}),
        }
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        return original(client, operation, params)

    BaseClient._make_api_call = recording  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("AZS3COPY_LOCAL_CALL_LOG"):
        record_aws_calls(os.environ["AZS3COPY_LOCAL_CALL_LOG"])
    args = sys.argv[1:] if argv is None else argv
    code_dir, handler_name, request_fd, response_fd = args[0], args[1], int(args[2]), int(args[3])
    with (
        os.fdopen(request_fd, "r", encoding="utf-8") as requests,
        os.fdopen(response_fd, "w", encoding="utf-8") as responses,
    ):
        serve(code_dir, handler_name, requests, responses)


if __name__ == "__main__":
    main()
