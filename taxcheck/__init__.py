"""taxcheck: what does this model's alignment cost, and what does it buy?"""

__version__ = "0.1.0"
