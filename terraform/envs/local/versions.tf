terraform {
  required_version = ">= 1.11"

  # State stays on this machine; tests point it elsewhere with -backend-config=path=...
  backend "local" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}
