"""largefile-parter: read one byte range from Azure (If-Match on the listed ETag) and upload it as one part."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from azs3copy.handler.function import Function
from azs3copy.steps.largefile_parter import largefile_parter

logger = Logger()
function = Function("largefile-parter", source=True)


@logger.inject_lambda_context
@function.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle_message(event, context, largefile_parter)
