# Every variable left unset (null) keeps the default of modules/azs3copy, named in its description.
# Put the values of one deployment in a tfvars file (see example.tfvars); never put credentials in one:
# the Azure credentials go into the secret after apply (docs/deploy.md).

variable "region" {
  type        = string
  description = "AWS region to deploy into, e.g. eu-west-1."
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (docs/design.md calls it <p>). Default: \"azs3copy\"."
  default     = null
}

variable "bucket_name" {
  type        = string
  description = "Destination bucket; null names it <name_prefix>-<account id>-<region>."
  default     = null
}

variable "bucket_versioning" {
  type        = bool
  description = "Keep object versions in the bucket. Default: true."
  default     = null
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days after which noncurrent object versions are deleted; 0 keeps them. Default: 30."
  default     = null
}

variable "abort_incomplete_multipart_days" {
  type        = number
  description = "Days after which an incomplete multipart upload is aborted by S3. Default: 7."
  default     = null
}

variable "bucket_force_destroy" {
  type        = bool
  description = "Let terraform destroy delete the bucket with every object and version in it; set true only to tear down. Default: false."
  default     = null
}

variable "ledger_deletion_protection" {
  type        = bool
  description = "Protect the ledger table from deletion. Default: true."
  default     = null
}

variable "secret_recovery_window_days" {
  type        = number
  description = "Days a deleted secret can be restored (0: deleted at once). Default: 30."
  default     = null
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Days before a key scheduled for deletion is deleted (7-30). Default: 30."
  default     = null
}

variable "begindate" {
  type        = string
  description = "begindate written into the secret when Terraform creates it (RFC 3339 UTC). Later edits are the operators'. Default: \"2024-01-01T00:00:00Z\"."
  default     = null
}

variable "large_threshold_bytes" {
  type        = number
  description = "Blobs of this size or more are copied as multipart uploads (AZS3COPY_LARGE_THRESHOLD). Default: 104857600."
  default     = null
}

variable "part_size_bytes" {
  type        = number
  description = "Multipart part size in bytes before it is raised for the 10,000-part limit (AZS3COPY_PART_SIZE). Default: 16777216."
  default     = null
}

variable "chunk_size_bytes" {
  type        = number
  description = "Streaming chunk of the download path in bytes (AZS3COPY_CHUNK_SIZE). Default: 8388608."
  default     = null
}

variable "verify" {
  type        = string
  description = "How copies are verified (AZS3COPY_VERIFY): readback or checksum. Default: \"readback\"."
  default     = null
}

variable "report_prefix" {
  type        = string
  description = "Key prefix of the run reports in the bucket (AZS3COPY_REPORT_PREFIX). Default: \"_azs3copy/reports/\"."
  default     = null
}

variable "settings_ttl_seconds" {
  type        = number
  description = "Seconds a warm function keeps the secret's value before reading it again (AZS3COPY_SETTINGS_TTL). Default: 60."
  default     = null
}

variable "build_dir" {
  type        = string
  description = "Directory holding layers/ and functions/ as `make layers function-zips` built them (an absolute path when this root is copied out of the repository). Default: build/ at the repository root."
  default     = null
}

variable "runtime" {
  type        = string
  description = "Lambda runtime of the functions and layers (make layers LAMBDA_PYTHON=... must match). Default: \"python3.12\"."
  default     = null
}

variable "architecture" {
  type        = string
  description = "Lambda architecture of the functions and layers: arm64 or x86_64 (make layers LAMBDA_ARCH=... must match). Default: \"arm64\"."
  default     = null
}

variable "function_memory_mb" {
  type        = map(number)
  description = "Memory in MiB per function; keys left out keep their defaults (launch 256, find 512, download 1024, initializer 256, parter 1024 and at least 2 × part size + 256, recombinator 1024). Keys: launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.function_memory_mb) : contains(["launch_qualification", "find_blobs", "download", "largefile_initializer", "largefile_parter", "largefile_recombinator"], k)])
    error_message = "function_memory_mb keys must be among launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator."
  }
}

variable "function_timeout_seconds" {
  type        = map(number)
  description = "Timeout in seconds per function; keys left out keep their defaults (launch 60, initializer 120, the others 900). Keys: launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.function_timeout_seconds) : contains(["launch_qualification", "find_blobs", "download", "largefile_initializer", "largefile_parter", "largefile_recombinator"], k)])
    error_message = "function_timeout_seconds keys must be among launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator."
  }
}

variable "function_reserved_concurrency" {
  type        = map(number)
  description = "Reserved concurrent executions per function (-1: no reservation); keys left out keep their defaults (launch 1, find 4, download 50, initializer 10, parter 200, recombinator 20). The account's concurrency quota must exceed their sum by 100. Keys: launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.function_reserved_concurrency) : contains(["launch_qualification", "find_blobs", "download", "largefile_initializer", "largefile_parter", "largefile_recombinator"], k)])
    error_message = "function_reserved_concurrency keys must be among launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator."
  }
}

variable "maximum_retry_attempts" {
  type        = number
  description = "Retries of a failed asynchronous invocation before the event goes to the function's dead-letter queue. Default: 2."
  default     = null
}

variable "maximum_event_age_seconds" {
  type        = number
  description = "Age after which a queued asynchronous event goes to the dead-letter queue unprocessed. Default: 21600."
  default     = null
}

variable "tracing_mode" {
  type        = string
  description = "X-Ray tracing of the functions: Active or PassThrough. Default: \"Active\"."
  default     = null
}

variable "log_level" {
  type        = string
  description = "POWERTOOLS_LOG_LEVEL of the functions. Default: \"INFO\"."
  default     = null
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the functions' log groups in days. Default: 365."
  default     = null
}

variable "schedule_expression" {
  type        = string
  description = "When runs start, in EventBridge Scheduler syntax: cron(...) or rate(...). Default: \"cron(0 2 * * ? *)\"."
  default     = null
}

variable "schedule_timezone" {
  type        = string
  description = "IANA time zone the schedule is read in, e.g. UTC or Europe/Paris. Default: \"UTC\"."
  default     = null
}

variable "schedule_enabled" {
  type        = bool
  description = "Whether the schedule starts runs. Default: true."
  default     = null
}

variable "alarm_event_age_seconds" {
  type        = number
  description = "Age in seconds of a queued asynchronous event above which a function's event-age alarm fires. Default: 900."
  default     = null
}

variable "extra_alarm_actions" {
  type        = list(string)
  description = "ARNs every alarm notifies besides the system's own alerts topic. Default: []."
  default     = null
}

variable "alarm_email_addresses" {
  type        = list(string)
  description = "Email addresses subscribed to the alerts topic; each confirms the mail AWS sends it. Default: []."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource (added to the provider's default tags)."
  default     = {}
}
