"""Integrations with other tools; each needs its extra (``pip install 'arbalest[luigi]>=2'``)."""
