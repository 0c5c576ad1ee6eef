provider "aws" {
  region = var.region

  default_tags {
    tags = { "azs3copy:managed-by" = "terraform" }
  }
}
