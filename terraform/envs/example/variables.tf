# Only what differs from one machine or account to the next; every other value is written in main.tf.
# Set them in a tfvars file (example.tfvars) or with -var.

variable "region" {
  type        = string
  description = "AWS region to deploy into, e.g. eu-west-1."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1 or us-gov-west-1."
  }
}

variable "build_dir" {
  type        = string
  description = "Directory holding layers/ and functions/ as `make layers function-zips` built them; null means build/ at the root of the repository this directory is in. A copy outside the repository sets an absolute path."
  default     = null
}
