"""Opt-in live probes: the only code besides the sources that talks to the network. Their results are
recorded as evidence objects in the inventory, so collectors stay pure and a pack can be re-evaluated."""
