"""Model families and their registry."""
