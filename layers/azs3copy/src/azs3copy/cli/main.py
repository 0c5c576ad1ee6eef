"""azs3copy: the operator's command line, the same against an AWS account and the local environment.

Against AWS it uses the normal boto3 credentials and finds every name from the deployed functions
(`--prefix`, default `azs3copy`). With `--local` it reads `.local/deployment.json`, written by `make up`.
Every error is one line on stderr; the exit status is 1 for a failure, 2 for a usage error, and for
`run --wait` 3 when the run finished with no blob failed but some not copied (changed, vanished,
needs-rehydration)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from azure.core.exceptions import AzureError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from azs3copy.cli.dlq import cmd_dlq
from azs3copy.cli.enable import cmd_enable
from azs3copy.cli.plan import cmd_plan
from azs3copy.cli.run import cmd_run
from azs3copy.cli.set_azure_credentials import cmd_set_azure_credentials
from azs3copy.cli.set_begindate import cmd_set_begindate
from azs3copy.cli.status import cmd_status
from azs3copy.cli.target import CliError, Target, error_code, resolve_target
from azs3copy.cli.verify import cmd_verify
from azs3copy.errors import Azs3copyError, ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azs3copy",
        description="Operate azs3copy: settings, plans, runs, failures and verification.",
        epilog="Against AWS: normal boto3 credentials (--profile, --region). Locally: --local after `make up`. "
        "Exit status: 0 success, 1 failure, 2 usage error; `run --wait` 3 when no blob failed but some were "
        "not copied.",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        default=os.environ.get("AZS3COPY_LOCAL") == "1",
        help="use the local environment of `make up` (.local/deployment.json); also AZS3COPY_LOCAL=1",
    )
    parser.add_argument("--deployment", help="path of a local deployment file (implies --local)")
    parser.add_argument(
        "--prefix",
        default=os.environ.get("AZS3COPY_PREFIX", "azs3copy"),
        help="name_prefix of the deployment (default azs3copy; also AZS3COPY_PREFIX)",
    )
    parser.add_argument("--profile", help="AWS profile")
    parser.add_argument("--region", help="AWS region")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="the current or last run: counts, bytes, duration, failures")
    status.add_argument("--run", help="a run id (default: the latest)")
    commands.add_parser("enable", help="set isactive = true: runs start on the schedule")
    commands.add_parser("disable", help="set isactive = false: no new runs start")
    begindate = commands.add_parser("set-begindate", help="copy blobs modified at or after DATE")
    begindate.add_argument("date", metavar="DATE", help="ISO 8601, e.g. 2024-01-31 or 2024-01-31T08:00:00Z")
    creds = commands.add_parser(
        "set-azure-credentials",
        help="write the Azure credentials from the environment (AZURE_*) or stdin into the secret",
        description="Reads AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_STORAGE_ACCOUNT_URL"
        "[/AZURE_AUTHORITY], or AZURE_STORAGE_SAS_TOKEN + AZURE_STORAGE_ACCOUNT_URL, or "
        "AZURE_STORAGE_CONNECTION_STRING; with --stdin, a JSON object with the 'azure' keys of the secret. "
        "Values are never taken from the command line and never printed.",
    )
    creds.add_argument("--stdin", action="store_true", help="read a JSON object from stdin instead")
    creds.add_argument("--check", action="store_true", help="list the account's containers before writing")
    run = commands.add_parser("run", help="start a run now (the manual invocation of launch-qualification)")
    run.add_argument(
        "--wait",
        action="store_true",
        help="follow it to its end; exit 1 if any blob failed, 3 if none failed but some were not copied "
        "(changed, vanished, needs-rehydration), 0 if every blob was copied or skipped",
    )
    run.add_argument("--force", action="store_true", help="start even if the last run has not finished")
    run.add_argument("--timeout", type=float, default=6 * 3600, help="seconds --wait waits (default 6 h)")
    dlq = commands.add_parser("dlq", help="failed tasks and events in the functions' dead-letter queues")
    dlq_actions = dlq.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")
    for action, text in (
        ("show", "list failed events and their errors"),
        ("redrive", "send each failed task back to its queue (or invoke a failed event again) and remove it"),
    ):
        sub = dlq_actions.add_parser(action, help=text)
        sub.add_argument("function", nargs="?", help="one function (directory name, e.g. download)")
        sub.add_argument(
            "--max", type=int, default=10 if action == "show" else 1000, help="at most this many"
        )
    verify = commands.add_parser("verify", help="compare Azure with S3: missing, different and extra objects")
    verify.add_argument("location", metavar="CONTAINER[/PREFIX]")
    verify.add_argument(
        "--quick", action="store_true", help="compare size and recorded source ETag, not bytes"
    )
    verify.add_argument("--all", action="store_true", help="also blobs the settings do not select")
    plan = commands.add_parser(
        "plan",
        help="list what the settings select and predict the run's duration and cost, without copying",
        description="Lists the source as find-blobs would (the secret's containers, prefix, include/exclude, "
        "begindate), reads the deployed concurrency, memory and tuning from Lambda, and prints blobs, bytes, "
        "sizes, the predicted duration and the cost by service with the price table used.",
    )
    plan.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="list at most N selected blobs a container; the figures are the sample's unless --scale-to",
    )
    plan.add_argument(
        "--scale-to",
        type=int,
        metavar="BLOBS",
        help="with --sample: how many blobs the whole selection holds (Azure's Blob Count metric, say); the "
        "sampled containers are scaled up to it, and the plan says so",
    )
    plan.add_argument(
        "--prices", metavar="FILE", help="a JSON object of prices replacing the package's (same keys)"
    )
    plan.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    return parser


COMMANDS: dict[str, Callable[[Target, argparse.Namespace, TextIO], int]] = {
    "status": cmd_status,
    "enable": cmd_enable,
    "disable": cmd_enable,
    "set-begindate": cmd_set_begindate,
    "set-azure-credentials": cmd_set_azure_credentials,
    "run": cmd_run,
    "dlq": cmd_dlq,
    "verify": cmd_verify,
    "plan": cmd_plan,
}


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, out: TextIO | None = None) -> int:  # noqa: C901 (a flat list of except clauses: one line of error per kind)
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    args.stdin_stream = stdin or sys.stdin
    try:
        target = resolve_target(args)
        return COMMANDS[args.command](target, args, out)
    except CliError as error:
        message = str(error)
    except ConfigError as error:
        message = f"invalid settings: {error}"
    except Azs3copyError as error:
        message = str(error)
    except AzureError as error:  # one the commands did not classify: still one line, signatures redacted
        from azs3copy.backends.azure_auth import classify_azure_error

        message = str(classify_azure_error(error))
    except NoCredentialsError:
        message = "no AWS credentials found: configure a profile (--profile) or the AWS_* variables"
    except NoRegionError:
        message = "no AWS region: pass --region or set AWS_REGION or AWS_DEFAULT_REGION"
    except EndpointConnectionError as error:
        message = f"cannot reach {error.kwargs.get('endpoint_url', 'the AWS endpoint')}"
    except ClientError as error:
        code = error_code(error)
        text = error.response.get("Error", {}).get("Message", "")
        if code in (
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "ExpiredTokenException",
            "ExpiredToken",
            "InvalidSignatureException",
        ):
            message = f"AWS refused the credentials ({code}): {text}"
        elif code in ("AccessDeniedException", "AccessDenied"):
            message = f"access denied ({error.operation_name}): {text}"
        elif code == "ResourceNotFoundException":
            message = f"not found ({error.operation_name}): {text}"
        else:
            message = f"{error.operation_name} failed ({code}): {text}"
    except BotoCoreError as error:
        message = f"AWS: {error}"
    except KeyboardInterrupt:
        message = "interrupted"
    except OSError as error:  # a file the command reads or writes (a deployment record, a report)
        message = f"{error.strerror or type(error).__name__}: {error.filename or error}"
    except (
        Exception
    ) as error:  # a defect, not the operator's input: still one line (AZS3COPY_DEBUG=1 shows it)
        if os.environ.get("AZS3COPY_DEBUG"):
            raise
        first = str(error).splitlines()[0] if str(error) else ""
        message = f"unexpected {type(error).__name__}: {first} (AZS3COPY_DEBUG=1 shows where)"
    print(f"azs3copy: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
