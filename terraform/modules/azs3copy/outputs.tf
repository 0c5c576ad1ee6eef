output "bucket" {
  description = "Name of the destination bucket."
  value       = module.storage.name
}

output "secret_id" {
  description = "ARN of the settings secret: put the Azure credentials into it (docs/deploy.md)."
  value       = module.secret.arn
}

output "ledger_table" {
  description = "Name of the DynamoDB ledger table."
  value       = module.ledger.name
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key."
  value       = module.key.arn
}

output "topic_arns" {
  description = "SNS topic ARNs by the function each feeds: find-blobs, download, largefile-initializer, largefile-parter, largefile-recombinator."
  value       = module.messaging.arns
}

output "function_names" {
  description = "Function names by directory name under lambdas/."
  value       = { for name, f in module.function : name => f.function_name }
}

output "function_arns" {
  description = "Function ARNs by directory name under lambdas/."
  value       = { for name, f in module.function : name => f.function_arn }
}

output "queue_urls" {
  description = "URLs of the SQS queues the steps consume, by function directory name (launch-qualification has none)."
  value       = { for name, f in module.function : name => f.queue_url if f.queue_url != null }
}

output "dlq_urls" {
  description = "Dead-letter queue URLs by function directory name."
  value       = { for name, f in module.function : name => f.dlq_url }
}

output "layer_arns" {
  description = "Layer version ARNs: azure-sdk and core."
  value       = module.layers.arns
}

output "schedule_name" {
  description = "Name of the EventBridge Scheduler schedule that starts runs."
  value       = module.schedule.name
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.observability.dashboard_name
}

output "alerts_topic_arn" {
  description = "Topic every alarm notifies: subscribe the on-call address to it."
  value       = module.observability.alerts_topic_arn
}

output "events_url" {
  description = "Function URL of blob-events: the endpoint of the Event Grid subscription (docs/operating.md)."
  value       = module.function["blob-events"].function_url
}
