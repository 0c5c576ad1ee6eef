"""blob-events: behind a function URL, Azure Event Grid's BlobCreated events queue their blobs for copying.

Event: a Lambda function URL request (payload format 2.0) from an Event Grid subscription: its validation
handshake (either schema), or a batch of events with the events token in the X-Azs3copy-Token header."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from azs3copy.handler.function import Function
from azs3copy.handler.url import handle_url

logger = Logger()
function = Function("blob-events", settings=True)


@logger.inject_lambda_context
@function.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_url(function, event, context)
