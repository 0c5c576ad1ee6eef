variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (docs/design.md calls it <p>)."
  default     = "azs3copy"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,27}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-29 characters of lowercase letters, digits and hyphens, starting with a letter (function and role names add up to 35 characters to it)."
  }
}

variable "build_dir" {
  type        = string
  description = "Directory holding layers/{azure-sdk,core}.zip and functions/<directory>.zip, as built by make layers function-zips."
}

variable "bucket_name" {
  type        = string
  description = "Destination bucket; null names it <name_prefix>-<account id>-<region>."
  default     = null
}

variable "bucket_versioning" {
  type        = bool
  description = "Keep object versions in the bucket."
  default     = true
  nullable    = false
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days after which noncurrent object versions are deleted; 0 keeps them."
  default     = 30
  nullable    = false
}

variable "abort_incomplete_multipart_days" {
  type        = number
  description = "Days after which an incomplete multipart upload is aborted by S3."
  default     = 7
  nullable    = false
}

variable "bucket_force_destroy" {
  type        = bool
  description = "Let terraform destroy delete the bucket with its objects (throw-away environments only)."
  default     = false
  nullable    = false
}

variable "ledger_deletion_protection" {
  type        = bool
  description = "Protect the ledger table from deletion."
  default     = true
  nullable    = false
}

variable "secret_recovery_window_days" {
  type        = number
  description = "Days a deleted secret can be restored (0: deleted at once)."
  default     = 30
  nullable    = false
}

variable "kms_deletion_window_days" {
  type        = number
  description = "Days before a key scheduled for deletion is deleted (7-30)."
  default     = 30
  nullable    = false
}

variable "begindate" {
  type        = string
  description = "begindate written into the secret when Terraform creates it (RFC 3339 UTC). Later edits are the operators'."
  default     = "2024-01-01T00:00:00Z"
  nullable    = false
}

variable "large_threshold_bytes" {
  type        = number
  description = "Blobs of this size or more are copied as multipart uploads (AZS3COPY_LARGE_THRESHOLD)."
  default     = 104857600
  nullable    = false

  validation {
    condition     = var.large_threshold_bytes >= 5242880 && floor(var.large_threshold_bytes) == var.large_threshold_bytes
    error_message = "large_threshold_bytes must be a whole number of bytes of at least 5242880 (5 MiB, S3's smallest multipart part)."
  }
}

variable "part_size_bytes" {
  type        = number
  description = "Multipart part size in bytes before it is raised for the 10,000-part limit (AZS3COPY_PART_SIZE)."
  default     = 16777216
  nullable    = false

  validation {
    condition     = var.part_size_bytes >= 5242880 && var.part_size_bytes <= 5368709120 && floor(var.part_size_bytes) == var.part_size_bytes
    error_message = "part_size_bytes must be a whole number of bytes between 5242880 (5 MiB) and 5368709120 (5 GiB), the part sizes S3 accepts."
  }
}

variable "chunk_size_bytes" {
  type        = number
  description = "Streaming chunk of the download path in bytes (AZS3COPY_CHUNK_SIZE): a blob up to this size is one read and one PutObject, a longer one streams in parts of this size."
  default     = 16777216
  nullable    = false

  validation {
    condition     = var.chunk_size_bytes >= 5242880 && var.chunk_size_bytes <= 268435456 && floor(var.chunk_size_bytes) == var.chunk_size_bytes
    error_message = "chunk_size_bytes must be a whole number of bytes between 5242880 (5 MiB: a blob larger than one chunk is uploaded in parts of this size, and S3's parts are at least 5 MiB) and 268435456 (256 MiB)."
  }
}

variable "verify" {
  type        = string
  description = "How copies are verified (AZS3COPY_VERIFY): checksum (S3 checks the CRC32 sent with every write and the whole object's on completion; the object is written with its verified mark in its metadata, nothing is read back) or readback (for audits: every object is also read back whole and compared before it is marked with a tag)."
  default     = "checksum"
  nullable    = false

  validation {
    condition     = contains(["checksum", "readback"], var.verify)
    error_message = "verify must be \"checksum\" or \"readback\"."
  }
}

variable "report_prefix" {
  type        = string
  description = "Key prefix of the run reports in the bucket (AZS3COPY_REPORT_PREFIX)."
  default     = "_azs3copy/reports/"
  nullable    = false

  validation {
    condition     = startswith(var.report_prefix, "_") && endswith(var.report_prefix, "/")
    error_message = "report_prefix must start with \"_\" (so no Azure container name can collide with it) and end with \"/\"."
  }
}

variable "credentials_ttl_seconds" {
  type        = number
  description = "Seconds a warm find-blobs, download or parter keeps the Azure credentials it read from the secret (AZS3COPY_CREDENTIALS_TTL); launch-qualification reads the whole secret at every launch."
  default     = 60
  nullable    = false

  validation {
    condition     = var.credentials_ttl_seconds >= 0
    error_message = "credentials_ttl_seconds must be 0 or more."
  }
}

variable "listing_shards" {
  type        = number
  description = "Most virtual directories (names up to the next `/`) a container, or a directory that was its listing's only one, is split into, each listed by find-blobs invocations of its own at once (AZS3COPY_LISTING_SHARDS); a level with more, or more than one page of entries, is listed whole. 0 lists every container whole, page after page."
  default     = 32
  nullable    = false

  validation {
    # The ledger records a split in one item, and each shard is one more listing the run waits for.
    condition     = var.listing_shards >= 0 && var.listing_shards <= 256 && floor(var.listing_shards) == var.listing_shards
    error_message = "listing_shards must be a whole number from 0 to 256."
  }
}

variable "stale_run_seconds" {
  type        = number
  description = "Seconds a run may go without progress (no page listed, blob settled or part uploaded) before the next launch takes it over (AZS3COPY_STALE_RUN_SECONDS); a run that makes progress is never taken over."
  default     = 43200
  nullable    = false

  validation {
    # A message can wait in Lambda's queue for maximum_event_age_seconds with nothing recorded meanwhile: a
    # run whose last messages wait there is not stalled.
    condition     = var.stale_run_seconds >= 1800 && var.stale_run_seconds > var.maximum_event_age_seconds
    error_message = "stale_run_seconds must be at least 1800 (twice the longest invocation) and more than maximum_event_age_seconds."
  }
}

variable "storage_class" {
  type        = string
  description = "S3 storage class of the copies when the secret's storage_class does not name one (AZS3COPY_STORAGE_CLASS); the secret's tier_storage_classes can pick another per Azure access tier."
  default     = "STANDARD"
  nullable    = false

  validation {
    condition     = contains(["STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "REDUCED_REDUNDANCY"], var.storage_class)
    error_message = "storage_class must be one of STANDARD, INTELLIGENT_TIERING, STANDARD_IA, ONEZONE_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE, REDUCED_REDUNDANCY."
  }
}

variable "runtime" {
  type        = string
  description = "Lambda runtime of the functions and layers; the layers are built for its Python version."
  default     = "python3.12"
  nullable    = false

  validation {
    condition     = can(regex("^python3\\.\\d+$", var.runtime))
    error_message = "runtime must be a Lambda Python runtime such as python3.12."
  }
}

variable "architecture" {
  type        = string
  description = "Lambda architecture of the functions and layers: arm64 or x86_64 (make layers LAMBDA_ARCH=... must match)."
  default     = "arm64"
  nullable    = false

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "function_memory_mb" {
  type = object({
    launch_qualification   = optional(number, 256)
    find_blobs             = optional(number, 512)
    download               = optional(number, 1024)
    largefile_initializer  = optional(number, 256)
    largefile_parter       = optional(number, 1024)
    largefile_recombinator = optional(number, 1024)
    blob_events            = optional(number, 256)
  })
  description = "Memory in MiB per function; attributes left out keep their defaults."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for v in values(var.function_memory_mb) : v >= 128 && v <= 10240 && floor(v) == v])
    error_message = "Every function_memory_mb value must be a whole number of MiB between 128 and 10240 (Lambda's range)."
  }

  validation {
    condition     = var.function_memory_mb.largefile_parter >= 2 * ceil(var.part_size_bytes / 1048576) + 256
    error_message = "function_memory_mb.largefile_parter must be at least twice part_size_bytes in MiB plus 256 MiB of headroom: a parter holds one whole part in memory, twice while the read completes."
  }
}

variable "function_timeout_seconds" {
  type = object({
    launch_qualification   = optional(number, 60)
    find_blobs             = optional(number, 900)
    download               = optional(number, 900)
    largefile_initializer  = optional(number, 120)
    largefile_parter       = optional(number, 900)
    largefile_recombinator = optional(number, 900)
    blob_events            = optional(number, 30)
  })
  description = "Timeout in seconds per function; attributes left out keep their defaults."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for v in values(var.function_timeout_seconds) : v >= 1 && v <= 900])
    error_message = "Every function_timeout_seconds value must be between 1 and 900 seconds (Lambda's limit)."
  }
}

variable "function_reserved_concurrency" {
  type = object({
    launch_qualification   = optional(number, 1)
    find_blobs             = optional(number, 4)
    download               = optional(number, 50)
    largefile_initializer  = optional(number, 10)
    largefile_parter       = optional(number, 200)
    largefile_recombinator = optional(number, 20)
    blob_events            = optional(number, 10)
  })
  description = "Reserved concurrent executions per function (-1: no reservation); attributes left out keep their defaults. The account's concurrency quota must exceed their sum by 100."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for v in values(var.function_reserved_concurrency) : v >= -1 && floor(v) == v])
    error_message = "Every function_reserved_concurrency value must be -1 (no reservation) or a whole number of 0 or more."
  }
}

variable "function_maximum_concurrency" {
  type = object({
    find_blobs             = optional(number)
    download               = optional(number)
    largefile_initializer  = optional(number)
    largefile_parter       = optional(number)
    largefile_recombinator = optional(number)
  })
  description = "Most invocations at once of each step's event source mapping (scaling_config.maximum_concurrency, 2-1000); left out or null: the function's reserved concurrency (100 without one). More work than that waits in the step's queue, up to 14 days."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for v in values(var.function_maximum_concurrency) : v >= 2 && v <= 1000 && floor(v) == v if v != null])
    error_message = "Every function_maximum_concurrency value must be a whole number from 2 to 1000 (Lambda's range) or null."
  }

  # More at once than the function's reservation is throttled, and a throttled delivery counts as an attempt:
  # a backlog would reach the dead-letter queue without having been tried. (A reservation of 1 allows 2,
  # Lambda's least maximum concurrency.) Conditionals, not &&: Terraform evaluates both sides of &&.
  validation {
    condition = length([
      for k, v in var.function_maximum_concurrency : k
      if(v == null ? false : var.function_reserved_concurrency[k] == -1 ? false : v > max(2, var.function_reserved_concurrency[k]))
    ]) == 0
    error_message = "function_maximum_concurrency.${join(", function_maximum_concurrency.", [
      for k, v in var.function_maximum_concurrency : k
      if(v == null ? false : var.function_reserved_concurrency[k] == -1 ? false : v > max(2, var.function_reserved_concurrency[k]))
    ])} exceeds that function's reserved concurrency (function_reserved_concurrency): the invocations beyond it would be throttled, and each throttled delivery counts as an attempt towards the dead-letter queue. Raise the reservation or lower the maximum."
  }
}

variable "retry_delay_seconds" {
  type        = number
  description = "Seconds before a failed step message is delivered again from its queue, times its attempt (AZS3COPY_RETRY_DELAY)."
  default     = 60
  nullable    = false

  validation {
    condition     = var.retry_delay_seconds >= 0 && var.retry_delay_seconds <= 3600 && floor(var.retry_delay_seconds) == var.retry_delay_seconds
    error_message = "retry_delay_seconds must be a whole number of seconds from 0 to 3600."
  }
}

variable "function_extra_environment" {
  type        = map(string)
  description = "Variables added to every function's environment (the local environment sets AWS_ENDPOINT_URL)."
  default     = {}
  nullable    = false
}

variable "maximum_retry_attempts" {
  type        = number
  description = "Retries of a failed step message (its queue's maxReceiveCount is this plus one) or of a failed scheduled launch, before it goes to the function's dead-letter queue."
  default     = 2
  nullable    = false

  validation {
    condition     = contains([0, 1, 2], var.maximum_retry_attempts)
    error_message = "maximum_retry_attempts must be 0, 1 or 2 (Lambda's range)."
  }
}

variable "maximum_event_age_seconds" {
  type        = number
  description = "Age after which an asynchronous invocation of launch-qualification (the schedule's) goes to its dead-letter queue unprocessed; the steps' messages wait in SQS instead, up to 14 days."
  default     = 21600
  nullable    = false

  validation {
    condition     = var.maximum_event_age_seconds >= 60 && var.maximum_event_age_seconds <= 21600
    error_message = "maximum_event_age_seconds must be between 60 and 21600 (Lambda's range)."
  }
}

variable "tracing_mode" {
  type        = string
  description = "X-Ray tracing of the functions: Active or PassThrough."
  default     = "Active"
  nullable    = false

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be \"Active\" or \"PassThrough\"."
  }
}

variable "log_level" {
  type        = string
  description = "POWERTOOLS_LOG_LEVEL of the functions."
  default     = "INFO"
  nullable    = false

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the functions' log groups in days."
  default     = 365
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "metrics_namespace" {
  type        = string
  description = "CloudWatch namespace of the functions' metrics (POWERTOOLS_METRICS_NAMESPACE)."
  default     = "azs3copy"
  nullable    = false
}

variable "schedule_expression" {
  type        = string
  description = "When runs start, in EventBridge Scheduler syntax: cron(minutes hours day-of-month month day-of-week year) or rate(value unit)."
  default     = "cron(0 2 * * ? *)"
  nullable    = false

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

variable "schedule_timezone" {
  type        = string
  description = "IANA time zone the schedule is read in, e.g. UTC or Europe/Paris."
  default     = "UTC"
  nullable    = false

  validation {
    condition     = can(regex("^([A-Z][A-Za-z0-9]*|[A-Z][A-Za-z]+(/[A-Za-z0-9][A-Za-z0-9_+-]*){1,2})$", var.schedule_timezone))
    error_message = "schedule_timezone must be an IANA time zone name such as UTC, Europe/Paris or America/Argentina/Buenos_Aires."
  }
}

variable "schedule_enabled" {
  type        = bool
  description = "Whether the schedule starts runs."
  default     = true
  nullable    = false
}

variable "alarm_event_age_seconds" {
  type        = number
  description = "Age in seconds of the oldest message waiting in a step's queue (or of a queued asynchronous launch) above which the function's age alarm fires."
  default     = 900
  nullable    = false
}

variable "extra_alarm_actions" {
  type        = list(string)
  description = "ARNs every alarm notifies besides the system's own alerts topic."
  default     = []
  nullable    = false
}

variable "alarm_email_addresses" {
  type        = list(string)
  description = "Email addresses subscribed to the alerts topic (each must confirm the subscription AWS mails it)."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for address in var.alarm_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "alarm_email_addresses must be email addresses such as on-call@example.com."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
  nullable    = false
}

variable "bucket_deny_insecure_transport" {
  type        = bool
  description = "Attach the TLS-only bucket policy (deny aws:SecureTransport = false). Only the local emulator environment turns it off."
  default     = true
}
