variable "aws_endpoint" {
  type        = string
  description = "URL of the moto server every AWS call goes to, e.g. http://127.0.0.1:5000; the functions get it as AWS_ENDPOINT_URL."

  validation {
    condition     = can(regex("^https?://[^/]+$", var.aws_endpoint))
    error_message = "aws_endpoint must be a URL with scheme, host and port and no path, e.g. http://127.0.0.1:5000."
  }
}

variable "build_dir" {
  type        = string
  description = "Directory with layers/*.zip and functions/*.zip; null means the repository's build/ (make layers function-zips)."
  default     = null
}

variable "region" {
  type        = string
  description = "Region the emulated resources live in."
  default     = "us-east-1"
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name."
  default     = "azs3copy"
}

variable "large_threshold_bytes" {
  type        = number
  description = "Blobs of this size or more take the multipart path (small for the demo: 10 MiB)."
  default     = 10485760
}

variable "part_size_bytes" {
  type        = number
  description = "Multipart part size in bytes (S3's smallest, 5 MiB, for the demo)."
  default     = 5242880
}

variable "chunk_size_bytes" {
  type        = number
  description = "Streaming chunk of the download path in bytes."
  default     = 8388608
}

variable "verify" {
  type        = string
  description = "How copies are verified: checksum (S3 checks what each write carries) or readback (also read back and compare)."
  default     = "checksum"
}

variable "function_memory_mb" {
  type        = map(number)
  description = "Memory in MiB per function, keyed launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator; keys left out keep the module's defaults."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.function_memory_mb) : contains(["launch_qualification", "find_blobs", "download", "largefile_initializer", "largefile_parter", "largefile_recombinator"], k)])
    error_message = "function_memory_mb keys must be among launch_qualification, find_blobs, download, largefile_initializer, largefile_parter, largefile_recombinator."
  }
}

variable "schedule_expression" {
  type        = string
  description = "Schedule of runs (moto never fires it; the local runtime fires it on demand)."
  default     = "cron(0 2 * * ? *)"
}

variable "schedule_timezone" {
  type        = string
  description = "IANA time zone of the schedule."
  default     = "UTC"
}

variable "schedule_enabled" {
  type        = bool
  description = "State of the schedule."
  default     = true
}

variable "alarm_email_addresses" {
  type        = list(string)
  description = "Addresses subscribed to the alerts topic (moto sends no mail: the subscription is exercised, nothing is delivered)."
  default     = ["on-call@example.com"]
}

variable "log_level" {
  type        = string
  description = "POWERTOOLS_LOG_LEVEL of the functions."
  default     = "DEBUG"
}
