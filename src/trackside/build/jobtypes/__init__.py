"""Built-in job types, each a plugin exactly like an installed job type bundle (seed 002)."""
