# The whole system on the local moto server, with sizes small enough for the demo and everything
# disposable (no deletion protection, no recovery windows).

module "azs3copy" {
  source = "../../modules/azs3copy"

  name_prefix          = var.name_prefix
  build_dir            = coalesce(var.build_dir, "${path.module}/../../../build")
  bucket_force_destroy = true
  # moto applies a bucket policy's Deny statements without evaluating their conditions, so the TLS-only
  # policy would refuse every write here (all traffic is plain HTTP on loopback anyway).
  bucket_deny_insecure_transport = false
  ledger_deletion_protection     = false
  secret_recovery_window_days    = 0
  kms_deletion_window_days       = 7
  large_threshold_bytes          = var.large_threshold_bytes
  part_size_bytes                = var.part_size_bytes
  chunk_size_bytes               = var.chunk_size_bytes
  verify                         = var.verify
  function_memory_mb             = var.function_memory_mb
  schedule_expression            = var.schedule_expression
  schedule_timezone              = var.schedule_timezone
  schedule_enabled               = var.schedule_enabled
  log_level                      = var.log_level
  alarm_email_addresses          = var.alarm_email_addresses
  function_extra_environment     = { AWS_ENDPOINT_URL = var.aws_endpoint }
  retry_delay_seconds            = 1 # a failed step message is tried again after seconds, not minutes
  tags                           = { "azs3copy:env" = "local" }
}
