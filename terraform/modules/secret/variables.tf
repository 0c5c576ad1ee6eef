variable "secret_name" {
  type        = string
  description = "Name of the Secrets Manager secret."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer-managed key that encrypts the secret."
}

variable "begindate" {
  type        = string
  description = "Initial begindate of the secret (RFC 3339 UTC, e.g. 2024-01-01T00:00:00Z): blobs modified before it are not copied."

  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$", var.begindate))
    error_message = "begindate must look like 2024-01-01T00:00:00Z (RFC 3339, UTC, whole seconds)."
  }
}

variable "recovery_window_in_days" {
  type        = number
  description = "Days a deleted secret can be restored: 0 deletes at once, otherwise 7 to 30."
  default     = 30

  validation {
    condition     = var.recovery_window_in_days == 0 || (var.recovery_window_in_days >= 7 && var.recovery_window_in_days <= 30)
    error_message = "recovery_window_in_days must be 0 or between 7 and 30."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for the secret."
  default     = {}
}
