terraform {
  required_version = ">= 1.9"

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
