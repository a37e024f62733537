"""What the bridge serves over HTTP: the operator endpoint (``health``: health, readiness, metrics), the
sign-up pages with single sign-on into SolusVM (``enrollment``), and the bounded threaded server both run on
(``server``). Beyond loopback only with a token and TLS.
"""
