"""Reports: the reconciliation of a month (bridge/domain/reconciliation) as documents an operator reads.

``labels`` holds the words and colours every format shares; ``json_report`` the stable JSON document
(its shape is documented there and in docs/reconciliation.md), written client by client so a large month
never sits in memory; ``csv_report`` one row per client (or resource) and bucket, for a spreadsheet;
``html_report`` one self-contained HTML page (templates/reconciliation.html.j2) with its charts drawn
by ``charts`` (matplotlib, imported only when a page is drawn); ``archive`` where the daemon keeps the
reports (var/reports/) and which is the latest; ``metrics`` the not-billed hours per reason of the
latest report as Prometheus gauges.

Nothing here reads the store or the clock: every function takes the values the domain produced.
"""
