output "name" {
  description = "Name of the ledger table."
  value       = aws_dynamodb_table.this.name
}

output "arn" {
  description = "ARN of the ledger table."
  value       = aws_dynamodb_table.this.arn
}
