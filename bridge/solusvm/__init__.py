"""The SolusVM 2 adapter: settings (``settings``), the REST client (``client``), the uptime rule (``uptime``).

Nothing is re-exported here, so importing the settings model does not pull in requests or tenacity.
"""
