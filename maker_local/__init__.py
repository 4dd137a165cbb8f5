"""maker_local: MAKER (maximal decomposition, first-to-ahead-by-k voting, red flags) on
self-hosted LLMs."""

__version__ = "0.1.0"
