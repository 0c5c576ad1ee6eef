"""launch-qualification: on the schedule or a manual test event, start a run if the secret says isactive.

Event: anything from EventBridge Scheduler, or `{}` by hand; `{"force": true}` starts a run even while
another one has not finished."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from azs3copy.handler.function import Function

logger = Logger()
function = Function("launch-qualification", sink=False, settings=True)


@logger.inject_lambda_context
@function.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle_launch(event, context)
