output "arns" {
  description = "Layer version ARNs by short name."
  value       = { for name, layer in aws_lambda_layer_version.this : name => layer.arn }
}
