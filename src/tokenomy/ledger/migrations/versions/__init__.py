"""One module per schema revision, ``vNNNN_<slug>.py``, revision id ``"NNNN"``."""
