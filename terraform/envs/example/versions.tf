terraform {
  # The S3 backend's lock file (use_lockfile) is generally available from Terraform 1.11.
  required_version = ">= 1.11"

  # Remote state for a real account. Replace the bucket (an existing, versioned, encrypted bucket that
  # holds your Terraform states), the key and the region before `terraform init`.
  backend "s3" {
    bucket       = "example-terraform-state"
    key          = "azs3copy/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}
