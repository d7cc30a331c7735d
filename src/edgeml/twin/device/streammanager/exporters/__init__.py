"""Exporters: a stream's acknowledged messages to AWS through plain boto3 clients, at least once, in order."""
