variable "name_prefix" {
  type        = string
  description = "Prefix of the alarm, topic and dashboard names."
}

variable "functions" {
  type = map(object({
    function_name = string
    dlq_name      = string
    queue_name    = optional(string)
  }))
  description = "The functions to watch, by directory name: function name, dead-letter queue name and, for a step, the name of the queue it consumes."
}

variable "metrics_namespace" {
  type        = string
  description = "CloudWatch namespace of the functions' own metrics."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer-managed key that encrypts the alerts topic."
}

variable "extra_alarm_actions" {
  type        = list(string)
  description = "More ARNs (SNS topics, for example an existing on-call topic) that every alarm notifies."
  default     = []
}

variable "alarm_email_addresses" {
  type        = list(string)
  description = "Email addresses subscribed to the alerts topic."
  default     = []
}

variable "error_threshold" {
  type        = number
  description = "Errors of one function in 5 minutes above which its errors alarm fires."
  default     = 0
}

variable "throttle_threshold" {
  type        = number
  description = "Throttles of one function per 5 minutes, 15 minutes in a row, above which its throttles alarm fires."
  default     = 0
}

variable "event_age_threshold_seconds" {
  type        = number
  description = "Age in seconds of the oldest message in a step's queue (ApproximateAgeOfOldestMessage), or of a queued asynchronous invocation of a function without a queue, above which its age alarm fires."
  default     = 900

  validation {
    condition     = var.event_age_threshold_seconds > 0
    error_message = "event_age_threshold_seconds must be a positive number of seconds."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for the alarms and the alerts topic."
  default     = {}
}
