"""Registry: content-keyed model versions, the champion comparison, promotion and rollback."""
