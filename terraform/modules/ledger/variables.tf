variable "table_name" {
  type        = string
  description = "Name of the ledger table."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer-managed key that encrypts the table."
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the table (turn off before terraform destroy)."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags for the table."
  default     = {}
}
