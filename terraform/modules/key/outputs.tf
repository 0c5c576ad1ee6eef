output "arn" {
  description = "ARN of the customer-managed key."
  value       = aws_kms_key.this.arn
}

output "alias" {
  description = "Alias of the key (alias/<name_prefix>)."
  value       = aws_kms_alias.this.name
}
