"""The daemon's moving parts, apart from the process itself (``bridge.daemon``): the job runner with its
leases and run records (``jobs``), every scheduled job by name (``registry``), usage-collection wiring
(``collect``), the outbox pusher to WHMCS (``push``), the cloud actions of the credit engine
(``cloud_actions``), stop-aware waits (``waits``) and systemd's notify protocol (``systemd``).
"""
