"""Mail to clients: the transports (SMTP, or ``.eml`` files under ``<state_dir>/mail``), the sender address,
the brandable templates and the client notifications rendered from them.

Used by the sign-up pages (bridge/web/enrollment/mailer.py) and by the client notifications, which the
services decide (bridge/services/notifications.py, through the ``NoticeTexts`` port) and
bridge/sync/mail_delivery.py sends, exactly once, from the outbox. The composition root
(bridge/bootstrap.py) picks the transport from the settings.
"""
