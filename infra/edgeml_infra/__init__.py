"""The edgeml CDK app: stacks for artifacts, fleet, results, health and compile (docs/infra.md)."""
