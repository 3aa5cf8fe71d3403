"""refundadvisor: how likely a refund is for an unexpected API charge, and what to do about it.

The library (facts, rules, engine) has no command-line or terminal dependencies; ``cli`` is a
thin shell over it.
"""

__version__ = "0.1.0"
