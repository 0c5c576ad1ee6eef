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

  validation {
    condition     = !startswith(var.schedule_expression, "cron(") || can(regex("^cron\\(\\S+( \\S+){5}\\)$", var.schedule_expression))
    error_message = "schedule_expression: cron(...) takes six fields separated by single spaces, minutes hours day-of-month month day-of-week year, e.g. cron(0 2 * * ? *) (a five-field Unix crontab has no year)."
  }

  validation {
    condition     = !can(regex("^cron\\(\\S+( \\S+){5}\\)$", var.schedule_expression)) || can(regex("^cron\\(\\S+ \\S+ (\\? \\S+ [^?\\s]\\S*|[^?\\s]\\S* \\S+ \\?) \\S+\\)$", var.schedule_expression))
    error_message = "schedule_expression: in cron(...) exactly one of day-of-month (3rd field) and day-of-week (5th field) must be ?, e.g. cron(0 2 * * ? *) or cron(0 2 ? * MON-FRI *)."
  }

  validation {
    condition     = !startswith(var.schedule_expression, "rate(") || can(regex("^rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)$", var.schedule_expression))
    error_message = "schedule_expression: rate(...) must be rate(1 minute), rate(1 hour), rate(1 day) or rate(N minutes|hours|days) with a whole N of 2 or more."
  }
}

variable "timezone" {
  type        = string
  description = "IANA time zone the cron expression is read in (e.g. Europe/Paris)."

  validation {
    condition     = can(regex("^([A-Z][A-Za-z0-9]*|[A-Z][A-Za-z]+(/[A-Za-z0-9][A-Za-z0-9_+-]*){1,2})$", var.timezone))
    error_message = "timezone must be an IANA time zone name such as UTC, Europe/Paris or America/Argentina/Buenos_Aires."
  }
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
