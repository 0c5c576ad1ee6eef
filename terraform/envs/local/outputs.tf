output "aws_endpoint" {
  description = "The moto server this state was applied against."
  value       = var.aws_endpoint
}

output "region" {
  description = "Region of the emulated resources."
  value       = var.region
}

output "bucket" {
  description = "Name of the destination bucket."
  value       = module.azs3copy.bucket
}

output "secret_id" {
  description = "ARN of the settings secret."
  value       = module.azs3copy.secret_id
}

output "ledger_table" {
  description = "Name of the ledger table."
  value       = module.azs3copy.ledger_table
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key."
  value       = module.azs3copy.kms_key_arn
}

output "topic_arns" {
  description = "SNS topic ARNs by hop."
  value       = module.azs3copy.topic_arns
}

output "function_names" {
  description = "Function names by directory name under lambdas/."
  value       = module.azs3copy.function_names
}

output "function_arns" {
  description = "Function ARNs by directory name under lambdas/."
  value       = module.azs3copy.function_arns
}

output "queue_urls" {
  description = "URLs of the SQS queues the steps consume, by function directory name."
  value       = module.azs3copy.queue_urls
}

output "dlq_urls" {
  description = "Dead-letter queue URLs by function directory name."
  value       = module.azs3copy.dlq_urls
}

output "layer_arns" {
  description = "Layer version ARNs."
  value       = module.azs3copy.layer_arns
}

output "schedule_name" {
  description = "Name of the schedule that starts runs."
  value       = module.azs3copy.schedule_name
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.azs3copy.dashboard_name
}

output "alerts_topic_arn" {
  description = "Topic the alarms notify."
  value       = module.azs3copy.alerts_topic_arn
}

output "events_url" {
  description = "Function URL of blob-events: the endpoint of the Event Grid subscription (docs/operating.md)."
  value       = module.azs3copy.events_url
}
