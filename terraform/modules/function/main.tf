# One function of the pipeline with everything that is its own: role, log group and dead-letter queue; for a
# step fed by SNS, its SQS queue (subscribed to the topic) and the event source mapping that consumes it; for a
# function invoked asynchronously (the schedule's), Lambda's retry policy and on-failure destination; for
# blob-events, its function URL.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  function_name = "${var.name_prefix}-${var.name}"
  queued        = length(var.trigger_topic_arns) > 0
  # The role names its queue by ARN, not through the queue resource: a change to the queue (its visibility
  # timeout follows the function's timeout) then leaves the role's policy known at plan time.
  queue_name = "${local.function_name}-queue"
  queue_arn  = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${local.queue_name}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sqs_queue" "dlq" {
  name                              = "${local.function_name}-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = var.tags
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_116:failed async events go to the SQS on-failure destination of aws_lambda_function_event_invoke_config below, which carries the whole event and its error (dead_letter_config would be a second, poorer copy)
  # checkov:skip=CKV_AWS_117:the functions reach Azure Blob Storage on the internet and AWS through public endpoints; a VPC would add NAT gateways and no boundary that IAM does not already draw
  # checkov:skip=CKV_AWS_272:code and layers are built reproducibly by make and deployed by hash (source_code_hash); AWS Signer is not part of this design
  function_name                  = local.function_name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  filename                       = var.zip_path
  source_code_hash               = filebase64sha256(var.zip_path)
  layers                         = var.layer_arns
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    # Blobs failed for good by an error no retry can fix are dead-lettered by the function itself.
    # A step's failed record is made visible again after AZS3COPY_RETRY_DELAY (times its attempt) instead of
    # the whole visibility timeout; AZS3COPY_MAX_ATTEMPTS (set by the caller) is the queue's maxReceiveCount.
    variables = merge(
      var.environment,
      { AZS3COPY_DLQ_URL = aws_sqs_queue.dlq.url },
      local.queued ? { AZS3COPY_QUEUE_URL = aws_sqs_queue.this[0].url, AZS3COPY_RETRY_DELAY = tostring(var.retry_delay_seconds) } : {},
    )
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = merge(var.tags, { "azs3copy:component" = var.name })

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

# Asynchronous invocations only (the schedule's launch): a step's retries are its queue's redrive policy.
resource "aws_lambda_function_event_invoke_config" "this" {
  count = local.queued ? 0 : 1

  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}

# Work waits here, not in Lambda's asynchronous queue (at most 6 hours there): a message is kept 14 days, is
# received by at most maximum_concurrency invocations at once, and after max_receive_count attempts moves to
# the dead-letter queue with its body unchanged. Raw delivery: the body is the azs3copy message itself.
resource "aws_sqs_queue" "this" {
  count = local.queued ? 1 : 0

  name                              = local.queue_name
  visibility_timeout_seconds        = 6 * var.timeout_seconds
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_iam_policy_document" "queue" {
  count = local.queued ? 1 : 0

  statement {
    sid       = "OnlyItsTopicsSend"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this[0].arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = values(var.trigger_topic_arns)
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  count = local.queued ? 1 : 0

  queue_url = aws_sqs_queue.this[0].id
  policy    = data.aws_iam_policy_document.queue[0].json
}

resource "aws_sns_topic_subscription" "this" {
  for_each = var.trigger_topic_arns

  topic_arn            = each.value
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this[0].arn
  raw_message_delivery = true

  depends_on = [aws_sqs_queue_policy.this]
}

resource "aws_lambda_event_source_mapping" "this" {
  count = local.queued ? 1 : 0

  event_source_arn        = aws_sqs_queue.this[0].arn
  function_name           = aws_lambda_function.this.arn
  batch_size              = var.batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  # The poller reads the queue with the function's role.
  depends_on = [aws_iam_role_policy.this]
}

# Event Grid cannot sign requests with AWS credentials: the URL takes any caller, and the function refuses
# every request without the events token of the settings secret (401) before it reads or queues anything.
resource "aws_lambda_function_url" "this" {
  # checkov:skip=CKV_AWS_258:Azure Event Grid cannot sign with SigV4; the function checks the secret token Event Grid sends in a header marked secret
  count = var.function_url ? 1 : 0

  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "url" {
  # checkov:skip=CKV_AWS_301:the function URL is public by design (Event Grid cannot sign requests); the function answers 401 to any request without the secret token
  count = var.function_url ? 1 : 0

  statement_id           = "AllowInvokeFromFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}
