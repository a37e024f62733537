"""What the bridge serves over HTTP: the operator endpoint (``health``: health, readiness, metrics, with
the store's gauges in ``metrics``), the sign-up pages with single sign-on into SolusVM (``enrollment``, its
link keys in ``enrollment.keys``), and the bounded threaded server both run on (``server``). Beyond
loopback only with a token and TLS.
"""
