# One function of the pipeline with everything that is its own: role, log group, dead-letter queue,
# on-failure destination and, for SNS-triggered functions, the subscription and the permission to invoke;
# for blob-events, its function URL.

locals {
  function_name = "${var.name_prefix}-${var.name}"
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
    variables = merge(var.environment, { AZS3COPY_DLQ_URL = aws_sqs_queue.dlq.url })
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = merge(var.tags, { "azs3copy:component" = var.name })

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}

resource "aws_lambda_permission" "sns" {
  for_each = var.trigger_topic_arns

  statement_id  = "AllowInvokeFromSns-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = each.value
}

resource "aws_sns_topic_subscription" "this" {
  for_each = var.trigger_topic_arns

  topic_arn = each.value
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this.arn

  depends_on = [aws_lambda_permission.sns]
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
