"""Learned joint source-channel codes: NECST and IABF (MLPs on 28x28 gray, 100 bits).

``model`` holds the network, ``training`` the two training methods, ``weights`` the committed
models, ``evaluation`` the paper's metric and ``codecs`` the link codecs ``necst`` and ``iabf``.
torch loads only when a model is trained or used.
"""
