"""``noisylink design``: which codec + ECC + modulation gives the best picture on a link.

``schema`` is the design file, ``rates`` fits each codec's rate to the bandwidth budget,
``racing`` decides where trials are still worth spending, ``run`` puts them together on the
sweep engines, and ``report`` shows the answer.
"""
