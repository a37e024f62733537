"""The OpenStack side (the design card names it after Fleio, the OpenStack billing panel it stands in for).

``nova_usage`` collects per-instance uptime from Nova's server list and simple-tenant-usage through
openstacksdk and implements the usage-source port; ``server_actions`` suspends, shelves, resumes and deletes
servers for the credit engine; ``connection`` builds the openstacksdk connection from ``[openstack]``
settings (``settings``); ``_vendor`` turns library failures into one-line errors without hosts or secrets.
"""
