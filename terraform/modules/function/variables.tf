variable "name_prefix" {
  type        = string
  description = "Prefix of the function name: <name_prefix>-<name>."
}

variable "name" {
  type        = string
  description = "Directory name of the function under lambdas/ (also the azs3copy:component tag)."
}

variable "description" {
  type        = string
  description = "What the function does."
}

variable "zip_path" {
  type        = string
  description = "Path of the function's code zip built by make."
}

variable "handler" {
  type        = string
  description = "Handler entry point inside the zip."
  default     = "handler.lambda_handler"
}

variable "runtime" {
  type        = string
  description = "Lambda runtime."
}

variable "architecture" {
  type        = string
  description = "Lambda architecture (arm64 or x86_64)."
}

variable "layer_arns" {
  type        = list(string)
  description = "Layer version ARNs, in order."
}

variable "memory_mb" {
  type        = number
  description = "Memory of the function in MiB."
}

variable "timeout_seconds" {
  type        = number
  description = "Timeout of one invocation in seconds."
}

variable "reserved_concurrency" {
  type        = number
  description = "Reserved concurrent executions (-1: no reservation, draw from the account's pool)."
}

variable "environment" {
  type        = map(string)
  description = "Environment variables of the function."
}

variable "policy_json" {
  type        = string
  description = "IAM policy document with the statements only this function needs (its data, topics, secret)."
}

variable "trigger_topic_arns" {
  type        = map(string)
  description = "SNS topics whose messages the function consumes, by short name, through its own SQS queue and an event source mapping (empty for functions invoked otherwise)."
  default     = {}
}

variable "function_url" {
  type        = bool
  description = "Give the function a Lambda function URL without AWS authorization (the function checks a token of its own)."
  default     = false
}

variable "batch_size" {
  type        = number
  description = "Messages of the queue per invocation (each step's message is one invocation's work: 1)."
  default     = 1

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 10 (an SQS batch without a batching window)."
  }
}

variable "maximum_concurrency" {
  type        = number
  description = "Most invocations the event source mapping runs at once (scaling_config.maximum_concurrency); at most the reserved concurrency, so no invocation is throttled."
  default     = 2

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000 && floor(var.maximum_concurrency) == var.maximum_concurrency
    error_message = "maximum_concurrency must be a whole number from 2 to 1000 (Lambda's range)."
  }
}

variable "max_receive_count" {
  type        = number
  description = "Attempts at a queued message before it moves to the dead-letter queue (the redrive policy's maxReceiveCount)."
  default     = 3

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "retry_delay_seconds" {
  type        = number
  description = "Seconds before a failed queued message is delivered again, times its attempt."
  default     = 60
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer-managed key (environment, log group, dead-letter queue)."
}

variable "tracing_mode" {
  type        = string
  description = "X-Ray tracing mode: Active or PassThrough."
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the function's log group in days."
}

variable "maximum_retry_attempts" {
  type        = number
  description = "Retries Lambda makes of a failed asynchronous event before it goes to the dead-letter queue (functions without a queue)."
}

variable "maximum_event_age_seconds" {
  type        = number
  description = "Age after which an unprocessed asynchronous event goes to the dead-letter queue (functions without a queue)."
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource of the function."
  default     = {}
}
