output "arn" {
  description = "ARN of the secret (what AZS3COPY_SECRET_ID holds)."
  value       = aws_secretsmanager_secret.this.arn
}

output "name" {
  description = "Name of the secret."
  value       = aws_secretsmanager_secret.this.name
}
