"""The ESR ceiling campaign: its results as sizing advice and reference-architecture pages."""
