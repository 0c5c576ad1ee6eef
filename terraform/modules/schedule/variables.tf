variable "name" {
  type        = string
  description = "Name of the schedule (and of its role)."
}

variable "schedule_expression" {
  type        = string
  description = "When runs start: cron(...) or rate(...), in EventBridge Scheduler syntax."

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be cron(minutes hours day-of-month month day-of-week year) or rate(value unit), e.g. cron(0 2 * * ? *) or rate(1 day)."
  }
}

variable "timezone" {
  type        = string
  description = "IANA time zone the cron expression is read in (e.g. Europe/Paris)."
}

variable "enabled" {
  type        = bool
  description = "Whether the schedule fires."
}

variable "function_arn" {
  type        = string
  description = "ARN of the launch-qualification function."
}

variable "dlq_arn" {
  type        = string
  description = "ARN of the queue that receives invocations the scheduler could not deliver."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer-managed key (schedule and dead-letter queue encryption)."
}

variable "tags" {
  type        = map(string)
  description = "Tags for the schedule's role."
  default     = {}
}
