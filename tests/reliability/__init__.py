"""The reliability suite: crash injection, a vendor fault matrix and a bad-input table.

Each module builds one table (:class:`tests.reliability.table.Table`) at a size: ``"ci"`` (what
``make test`` runs through pytest) or ``"full"`` (what ``make reliability`` runs and prints).
"""
