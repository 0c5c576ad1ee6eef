"""largefile-initializer: open the multipart upload of a large blob, record its part plan and publish one
message a part."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from azs3copy.errors import (
    Azs3copyError,
)
from azs3copy.ledger import TERMINAL_STATES
from azs3copy.messages import (
    LargefileInitializerTask,
    LargefileParterTask,
    encode,
)
from azs3copy.planner import plan_parts
from azs3copy.steps.context import Deps, Invocation, Outcome, run_settings
from azs3copy.steps.report import maybe_report
from azs3copy.steps.settle import settle
from azs3copy.steps.verify import marked_on_write, object_attrs

logger = Logger(child=True)


def largefile_initializer(deps: Deps, message: LargefileInitializerTask, invocation: Invocation) -> Outcome:
    """Open the multipart upload of a large blob, record its part plan and publish one message a part."""
    sink, blob, key = deps.need_sink(), message.blob, message.key
    outcome = Outcome()
    record = deps.ledger.get_blob(message.run_id, blob.blob_id)
    if record and record.state in TERMINAL_STATES:
        outcome.count("done-before")
        maybe_report(deps, message.run_id, invocation)  # an earlier attempt may have failed writing it
        return outcome
    try:
        plan = plan_parts(blob.size, deps.tuning.part_size, deps.tuning.max_part_size)
        upload_id = record.upload_id if record and record.upload_id else None
        if upload_id is None:
            marked = marked_on_write(deps, blob, across_invocations=True)
            mine = sink.create_upload(
                key, object_attrs(blob, run_settings(deps, message.run_id), marked=marked)
            )
            upload_id = deps.ledger.set_upload(
                message.run_id, blob.blob_id, mine, key, plan.part_size, plan.count, "FULL_OBJECT"
            )
            if upload_id != mine:
                sink.abort(key, mine)  # another delivery of this message got there first
        elif record is not None:
            plan = plan_parts(blob.size, record.part_size)
    except Azs3copyError as error:
        state = settle(deps, message.run_id, blob.blob_id, error, invocation)
        if state is None:
            raise
        outcome.count(state)
        maybe_report(deps, message.run_id, invocation)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome
    bodies = [
        encode(
            LargefileParterTask(
                message.run_id,
                blob,
                key,
                upload_id,
                part.number,
                part.offset,
                part.length,
                plan.count,
                plan.part_size,
            )
        )
        for part in plan.parts()
    ]
    deps.publisher.publish(deps.topics.largefile_parter, bodies)
    outcome.published = len(bodies)
    outcome.detail = {"parts": plan.count, "part_size": plan.part_size}
    logger.info(
        "multipart upload opened",
        extra={
            "run_id": message.run_id,
            "blob": blob.blob_id,
            "parts": plan.count,
            "part_size": plan.part_size,
        },
    )
    return outcome
