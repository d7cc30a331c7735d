"""The cloud twin's executor of the IoT topic rules moto stores (SQL subset and the actions we use)."""

from edgeml.twin.cloud.rules.engine import RuleFailure, TopicRuleEngine

__all__ = ["RuleFailure", "TopicRuleEngine"]
