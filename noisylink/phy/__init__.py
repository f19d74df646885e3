"""Physical layer: bits, CRC, ECC, interleaving, modulation and channels."""
