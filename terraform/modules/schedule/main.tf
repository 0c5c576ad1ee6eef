# EventBridge Scheduler starts a run: it invokes launch-qualification asynchronously on the schedule.

resource "aws_scheduler_schedule" "this" {
  name                         = var.name
  description                  = "Starts an azs3copy run"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.timezone
  state                        = var.enabled ? "ENABLED" : "DISABLED"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = var.function_arn
    role_arn = aws_iam_role.this.arn
    input    = jsonencode({ source = "schedule" })

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }

    dead_letter_config {
      arn = var.dlq_arn
    }
  }
}
