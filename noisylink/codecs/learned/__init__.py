"""Learned transform codecs with real entropy coding (the mean-scale hyperprior)."""
