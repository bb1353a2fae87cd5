"""NetworkPolicy semantics, pure: label selectors now; reachability (issue 5) builds on the same functions."""
