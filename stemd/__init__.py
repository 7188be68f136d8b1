"""stemd: headless live stem engine."""
