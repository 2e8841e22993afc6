"""What a person reads: blocking tables per dataset and study, intervals, plots, CSV."""
