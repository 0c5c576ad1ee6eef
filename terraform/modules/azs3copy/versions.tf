terraform {
  # 1.9: validations that refer to other variables (function_memory_mb against part_size_bytes).
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80"
    }
  }
}
