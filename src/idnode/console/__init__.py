"""The web console at ``/console``: server-rendered pages (Jinja2, htmx, ECharts) over the
registry's and the node's services, in Simplified Chinese and English (docs/console.md)."""
