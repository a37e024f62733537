"""The brandable templates: the operator's ``enrollment.template_dir`` first, then the bundled ones.

Every page and every mail of the bridge is a template in bridge/web/templates; a file of the same name in
``template_dir`` replaces it (copy one there and change it). Mails are plain text: ``mail_<name>.txt``.
A client notification's template starts with a ``Subject:`` line, then a blank line, then the body.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from bridge.settings import Settings

TEMPLATES = Path(__file__).parents[1] / "web" / "templates"
"""The bundled templates (pages and mails)."""


def template_loader(settings: Settings) -> jinja2.BaseLoader:
    """The operator's ``enrollment.template_dir`` first (to brand or replace any page or mail), then ours."""
    bundled = jinja2.FileSystemLoader(str(TEMPLATES))
    if not settings.enrollment.template_dir:
        return bundled
    return jinja2.ChoiceLoader([jinja2.FileSystemLoader(settings.enrollment.template_dir), bundled])


def mail_templates(settings: Settings) -> jinja2.Environment:
    """The environment of the plain-text mails (no HTML escaping; undefined names are errors)."""
    return jinja2.Environment(
        loader=template_loader(settings), autoescape=False, undefined=jinja2.StrictUndefined
    )
