"""What every layer shares: the batch contract (`types`), the named rows of a run (`records`),
errors a user can fix (`errors`), pure statistics (`stats`) and the collector pause of hot
loops (`gcpause`). No I/O here. This file imports nothing, so heavy imports (numpy) stay lazy."""
