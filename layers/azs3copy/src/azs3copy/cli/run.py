"""`azs3copy run [--wait]`: invoke launch-qualification now, and follow the run to its end."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from botocore.exceptions import (
    ClientError,
)

from azs3copy.cli.status import NOT_COPIED_STATES, OK_STATES, print_run, size_text
from azs3copy.cli.target import CliError, Target, error_code

EXIT_NOT_COPIED = 3


def invoke_launch(target: Target, force: bool) -> dict[str, Any]:
    name = target.function("launch-qualification")
    payload = json.dumps({"force": True} if force else {}).encode()
    try:
        response = target.client("lambda").invoke(FunctionName=name, Payload=payload)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise CliError(
                f"no function {name}: is azs3copy deployed here? (--prefix, --region, --local)"
            ) from None
        raise
    raw = response["Payload"].read()
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = raw.decode(errors="replace")[:500]
    if response.get("FunctionError"):
        message = (
            f"{body.get('errorType')}: {body.get('errorMessage')}" if isinstance(body, dict) else str(body)
        )
        hint = " (azs3copy run --force starts one anyway)" if "RunInProgress" in message else ""
        raise CliError(f"{name} failed: {message}{hint}")
    result: dict[str, Any] = body if isinstance(body, dict) else {}
    return result


def cmd_run(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    result = invoke_launch(target, args.force)
    if not result.get("started"):
        raise CliError(f"no run started: {result.get('reason', 'launch-qualification said no')}")
    run_id = str(result["run_id"])
    containers = result.get("containers") or []
    print(f"run {run_id} started: {len(containers)} container(s): {', '.join(containers)}", file=out)
    if not args.wait:
        print("follow it with: azs3copy status" + (" --local" if target.local else ""), file=out)
        return 0
    run = follow(target, run_id, args.timeout, out)
    print_run(target, run, out)
    return run_outcome(run, out)


def run_outcome(run: Any, out: TextIO) -> int:
    """The exit status of `run --wait` for a finished run, with one line saying why when it is not 0:
    1 if any blob failed, EXIT_NOT_COPIED if none failed but some were not copied, 0 otherwise."""
    failed = sum(n for state, n in run.counts.items() if state not in OK_STATES + NOT_COPIED_STATES)
    not_copied = {state: run.counts.get(state, 0) for state in NOT_COPIED_STATES if run.counts.get(state)}
    detail = ", ".join(f"{state} {n}" for state, n in not_copied.items())
    if failed:
        print(
            f"result: {failed} blob(s) failed" + (f"; not copied: {detail}" if detail else "") + " (exit 1)",
            file=out,
        )
        return 1
    if not_copied:
        print(
            f"result: no blob failed, but {sum(not_copied.values())} not copied: {detail} "
            f"(exit {EXIT_NOT_COPIED}; the next run takes changed blobs, rehydrate archived ones first)",
            file=out,
        )
        return EXIT_NOT_COPIED
    return 0


def follow(target: Target, run_id: str, timeout: float, out: TextIO) -> Any:
    """Poll the ledger until the run's report is written; show progress. Returns the final RunRecord."""
    ledger = target.ledger()
    deadline = time.monotonic() + timeout
    interactive = getattr(out, "isatty", lambda: False)()

    def snapshot() -> Any:
        run = ledger.get_run(run_id)
        if run is None:
            raise CliError(f"run {run_id} is not in the ledger {target.ledger_table}")
        return run

    def describe(run: Any) -> str:
        elapsed = max(1e-6, time.time() - run.started_at)
        c = run.counts
        other = sum(n for s, n in c.items() if s not in ("copied", "skipped", "failed"))
        return (
            f"found {run.found}  copied {c.get('copied', 0)}  skipped {c.get('skipped', 0)}  "
            f"failed {c.get('failed', 0)}"
            + (f"  other {other}" if other else "")
            + f"  {size_text(run.bytes_copied)}  {size_text(run.bytes_copied / elapsed)}/s"
        )

    if interactive:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:  # the package without its [cli] extra: the plain progress lines below
            interactive = False
    if interactive:
        console = Console(file=out)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(run_id, total=None, detail="listing…")
            while True:
                run = snapshot()
                total = run.found if run.listing_pending <= 0 else None
                progress.update(task, completed=run.done, total=total, detail=describe(run))
                if run.report_key:
                    progress.update(task, total=run.found, completed=run.done)
                    return run
                if time.monotonic() > deadline:
                    raise CliError(f"run {run_id} is still going after {timeout:.0f} s (azs3copy status)")
                time.sleep(0.5)
    last = 0.0
    while True:
        run = snapshot()
        if run.report_key:
            print(f"  {run.done}/{run.found}  {describe(run)}", file=out)
            return run
        if time.monotonic() - last >= 5:
            print(f"  {run.done}/{run.found}  {describe(run)}", file=out, flush=True)
            last = time.monotonic()
        if time.monotonic() > deadline:
            raise CliError(f"run {run_id} is still going after {timeout:.0f} s (azs3copy status)")
        time.sleep(0.5)
