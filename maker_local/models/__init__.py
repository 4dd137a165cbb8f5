"""Model profiles and what they need: the TOML profiles in the repo's `models/` (`profiles`),
the vLLM servers for them (`serving`) and where a reasoning model's thought ends (`reasoning`).
This file imports nothing, so heavy imports (torch, vLLM) stay lazy."""
