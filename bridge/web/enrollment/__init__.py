"""The post-pay sign-up pages and single sign-on into SolusVM (issue 9), served by the daemon.

``site`` wires the service, the mailer, the Flask app and the server from settings (Flask is loaded only
there); ``keys`` holds the link keys; ``app``, ``views`` and ``forms`` are the pages; ``mailer`` sends the
sign-up mails; ``server`` is the bounded threaded server.
"""
