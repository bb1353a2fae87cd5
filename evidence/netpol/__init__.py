"""NetworkPolicy semantics and reachability, pure: selectors, ports, the engine that computes who can reach whom."""
