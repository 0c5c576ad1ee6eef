variable "bucket_name" {
  type        = string
  description = "Name of the destination bucket (globally unique in AWS)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer-managed key for the bucket's default encryption."
}

variable "versioning" {
  type        = bool
  description = "Keep object versions (true) or suspend versioning (false)."
  default     = true
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days after which noncurrent object versions are deleted; 0 keeps them forever."
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 0
    error_message = "noncurrent_version_expiration_days must be 0 (keep forever) or a positive number of days."
  }
}

variable "abort_incomplete_multipart_days" {
  type        = number
  description = "Days after which S3 aborts a multipart upload that was never completed."
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1
    error_message = "abort_incomplete_multipart_days must be at least 1."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Let terraform destroy delete a bucket that still holds objects (for throw-away environments only)."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags for the bucket."
  default     = {}
}

variable "deny_insecure_transport" {
  type        = bool
  description = "Attach the bucket policy that denies every request not made over TLS. Leave it on; only the local emulator (which applies Deny statements without evaluating their conditions) turns it off."
  default     = true
}
