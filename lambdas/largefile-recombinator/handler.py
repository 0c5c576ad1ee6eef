"""largefile-recombinator: complete the object once every planned part is in, exactly once, then verify it (a long read-back continues in a fresh invocation)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from azs3copy.handler.function import Function
from azs3copy.steps.largefile_recombinator import largefile_recombinator

logger = Logger()
function = Function("largefile-recombinator")


@logger.inject_lambda_context
@function.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle_message(event, context, largefile_recombinator)
