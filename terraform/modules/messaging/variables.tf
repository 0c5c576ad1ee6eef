variable "name_prefix" {
  type        = string
  description = "Prefix of the topic names: <name_prefix>-<topic>."
}

variable "topics" {
  type        = list(string)
  description = "Short names of the topics, one per hop."
  default     = ["find-blobs", "download", "largefile-initializer", "largefile-parter", "largefile-recombinator"]
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer-managed key that encrypts the topics."
}

variable "tags" {
  type        = map(string)
  description = "Tags for the topics."
  default     = {}
}
