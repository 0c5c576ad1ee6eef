# The settings secret (design.md). Terraform writes only the inert initial value; operators fill in the
# Azure credentials with `azs3copy set-azure-credentials` (or the AWS CLI), and Terraform leaves them alone.

locals {
  # A label of our own keeps the version Terraform created alive. Each operator edit is a new version that
  # takes AWSCURRENT (and AWSPREVIOUS moves along); a version left without any label is deprecated and
  # Secrets Manager may delete it, after which the provider would put the initial value back as AWSCURRENT.
  initial_stage = "azs3copy-initial"
}

resource "aws_secretsmanager_secret" "this" {
  # checkov:skip=CKV2_AWS_57:the secret holds Azure credentials that only Azure can issue; they are rotated there and put here with `azs3copy set-azure-credentials`, so no rotation Lambda can do it
  name                    = var.secret_name
  description             = "${var.secret_name}: Azure source credentials and copy settings (JSON, see docs/design.md)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "initial" {
  secret_id = aws_secretsmanager_secret.this.id
  secret_string = jsonencode({
    isactive  = false
    begindate = var.begindate
  })
  version_stages = ["AWSCURRENT", local.initial_stage]

  lifecycle {
    # Operators' later values (credentials, containers, isactive) must survive terraform apply: the value is
    # never rewritten, and AWSCURRENT is never moved back to this version once an operator's value holds it.
    ignore_changes = [secret_string, version_stages]
  }
}
