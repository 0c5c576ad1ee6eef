"""The modules that talk to AWS and Azure: the only ones that import boto3, botocore or azure."""
