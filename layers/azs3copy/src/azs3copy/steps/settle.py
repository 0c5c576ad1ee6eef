"""What an error leaves behind: the blob's state in the ledger, and no multipart upload left open."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from azs3copy.errors import (
    Azs3copyError,
)
from azs3copy.redaction import redact
from azs3copy.steps.context import Deps, Invocation

logger = Logger(child=True)


def settle(deps: Deps, run_id: str, blob_id: str, error: Azs3copyError, invocation: Invocation) -> str | None:
    """Record what an error means for the blob. Returns the state recorded, or None when a later attempt
    will try again (the error is retryable and attempts remain)."""
    reason = redact(f"{type(error).__name__}: {error}", deps.secrets)
    if error.retryable and not invocation.final_attempt:
        logger.warning("blob will be retried", extra={"run_id": run_id, "blob": blob_id, "reason": reason})
        return None
    if error.retryable:
        reason = f"{reason} (gave up after {deps.tuning.max_attempts} attempts)"
    recorded = deps.ledger.finish(run_id, blob_id, error.state, reason, 0)
    if recorded and error.state == "failed" and not error.retryable and deps.on_fatal:
        deps.on_fatal(run_id, blob_id, reason)
    log = logger.error if error.state == "failed" else logger.warning
    log("blob not copied", extra={"run_id": run_id, "blob": blob_id, "state": error.state, "reason": reason})
    return error.state


def abandon_upload(deps: Deps, key: str, upload_id: str) -> None:
    try:
        deps.need_sink().abort(key, upload_id)
    except Azs3copyError as error:  # the S3 lifecycle rule removes it later; the blob's state is what matters
        logger.error("could not abort multipart upload", extra={"key": key, "error": str(error)})


def release(deps: Deps, run_id: str, blob_id: str, invocation: Invocation) -> None:
    """Let go of the blob's claim when its outcome could not be recorded, so that another attempt can take it
    before the lease runs out; a failure to do even that is logged (the lease still ends)."""
    try:
        deps.ledger.release(run_id, blob_id, invocation.request_id)
    except Azs3copyError as error:
        logger.error(
            "could not release the claim", extra={"run_id": run_id, "blob": blob_id, "error": str(error)}
        )
