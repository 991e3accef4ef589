"""Built-in job types, each a plugin exactly like an installed job type bundle (docs/architecture.md, "The plugin
interface")."""
