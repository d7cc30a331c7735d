"""The CLI's view of the account: what `edgeml config from-stack` reads from the CDK stacks' outputs."""
