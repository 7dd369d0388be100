"""Analysis of study runs: Chinchilla-style laws, allocation tables and figures."""
