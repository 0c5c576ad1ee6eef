# Alarms on every function (dead letters, errors, throttles, age of the oldest queued message or event), the topic they notify,
# and one dashboard: throughput, blobs by terminal state, errors, duration.

data "aws_region" "current" {}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-alerts"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

# Someone reads the alarms: each address gets a confirmation mail from AWS, then every alarm.
resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_email_addresses)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = concat([aws_sns_topic.alerts.arn], var.extra_alarm_actions)
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = var.functions

  alarm_name          = "${each.value.function_name}-dlq-depth"
  alarm_description   = "Events of ${each.value.function_name} failed every retry and wait in ${each.value.dlq_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.dlq_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each = var.functions

  alarm_name          = "${each.value.function_name}-errors"
  alarm_description   = "${each.value.function_name} raised errors (retries may still succeed; the DLQ alarm says when they did not)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.error_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each = var.functions

  alarm_name          = "${each.value.function_name}-throttles"
  alarm_description   = "${each.value.function_name} hit its reserved concurrency; events wait and age."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.throttle_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "event_age" {
  for_each = { for name, f in var.functions : name => f if f.queue_name == null }

  alarm_name          = "${each.value.function_name}-event-age"
  alarm_description   = "Asynchronous events of ${each.value.function_name} waited more than ${var.event_age_threshold_seconds} s before being processed."
  namespace           = "AWS/Lambda"
  metric_name         = "AsyncEventAge"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.event_age_threshold_seconds * 1000
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# A step's backlog: nothing expires in its queue within 14 days, so an old message means the step drains more
# slowly than work arrives (at its maximum concurrency), or a message keeps failing and waits for its retries.
resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each = { for name, f in var.functions : name => f if f.queue_name != null }

  alarm_name          = "${each.value.function_name}-queue-age"
  alarm_description   = "The oldest message in ${each.value.queue_name} has waited more than ${var.event_age_threshold_seconds} s: ${each.value.function_name} drains its queue more slowly than work arrives (docs/operating.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.value.queue_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.event_age_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}
