"""Webhook ingress: routing of outside events to their owner, endpoint registration, operations."""
