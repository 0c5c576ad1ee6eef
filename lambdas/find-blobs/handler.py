"""find-blobs: list one container (continuing in a fresh invocation before the time limit), skip what S3 already holds unchanged, publish small-blob batches and large blobs."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from azs3copy.handler.function import Function
from azs3copy.steps.find_blobs import find_blobs

logger = Logger()
function = Function("find-blobs", source=True)


@logger.inject_lambda_context
@function.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle_message(event, context, find_blobs)
