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
  description = "SNS topics that invoke the function, by short name (empty for functions invoked otherwise)."
  default     = {}
}

variable "function_url" {
  type        = bool
  description = "Give the function a Lambda function URL without AWS authorization (the function checks a token of its own)."
  default     = false
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
  description = "Retries Lambda makes of a failed asynchronous event before it goes to the dead-letter queue."
}

variable "maximum_event_age_seconds" {
  type        = number
  description = "Age after which an unprocessed asynchronous event goes to the dead-letter queue."
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource of the function."
  default     = {}
}
