"""Hooks: one method per remote call, stateless, clients built lazily."""
