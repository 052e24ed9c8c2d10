"""Development runner (`make run`): API + worker, on an embedded Redis when none is reachable."""
