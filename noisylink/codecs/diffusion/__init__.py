"""Diffusion codecs by reverse channel coding: DDCM, Turbo-DDCM, Robust Turbo-DDCM.

``combination_rank`` / ``combination_unrank`` are the combinatorial index Turbo-DDCM sends.
"""

from noisylink.codecs.diffusion.combinatorics import combination_rank, combination_unrank

__all__ = ["combination_rank", "combination_unrank"]
