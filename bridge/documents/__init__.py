"""Documents a client receives, apart from how they are assembled: the PDF of an HTML document, the
provider's company block and an invoice's tax block as the invoice template shows them.

This package sits beside the adapters, not in the service layer: it takes values (HTML, settings, domain
values) and returns values, so the services, the CLI and the web pages can all use it, and the heavy
PDF library is loaded only by the code that renders a PDF (:mod:`bridge.documents.pdf`).
"""
