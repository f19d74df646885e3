"""Suite-wide settings: no test depends on how fast the machine is (CI shares its cores).

Hypothesis gives no example a deadline, also in tests that set no settings of their own (its
default is 200 ms). Tests that guard against hangs wait minutes, not seconds; speed is
measured in ``benchmarks/``. ``tests/under_load.sh`` runs the suite on a busy machine.
"""

from hypothesis import settings

settings.register_profile("noisylink", deadline=None)
settings.load_profile("noisylink")
