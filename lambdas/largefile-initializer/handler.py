"""largefile-initializer: open the multipart upload of a large blob, record its part plan, publish one message per part."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from azs3copy.handler.function import Function
from azs3copy.steps.largefile_initializer import largefile_initializer

logger = Logger()
function = Function("largefile-initializer")


@logger.inject_lambda_context
@function.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle_message(event, context, largefile_initializer)
