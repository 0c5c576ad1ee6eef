"""download: copy each small blob of a batch into one S3 object, streamed in bounded chunks and verified."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from azs3copy.handler.function import Function
from azs3copy.steps.download import download

logger = Logger()
function = Function("download", source=True)


@logger.inject_lambda_context
@function.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle_message(event, context, download)
