"""Pure logic: voting, red flags, scaling laws, seeds and schedules. No I/O here."""
