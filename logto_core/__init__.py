"""logto_core: the pure, synchronous protocol core of logto-sansio (no network, no clock)."""
