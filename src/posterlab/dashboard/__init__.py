"""The dashboard: a Starlette web application over the results database.

Thin over :mod:`posterlab.service`: every page and every ``/api/`` answer is one or two
service calls rendered with Jinja2 (autoescaped) or as JSON. Everything the browser
loads ships in this package (``templates/``, ``static/``); nothing comes from the
internet. Actions (retry, cancel, re-analysis) are off unless asked for, and then need
the token of ``POSTERLAB_DASHBOARD_TOKEN`` (see :mod:`posterlab.dashboard.auth`).
"""

from posterlab.dashboard.app import create_app, serve
from posterlab.dashboard.state import Dashboard

__all__ = ["Dashboard", "create_app", "serve"]
