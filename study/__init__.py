"""equiscale: everything that produces trials (benchmark data, models, training, studies)."""
