"""Sources: the only code that reads a cluster or its snapshot. Each yields an Inventory."""
