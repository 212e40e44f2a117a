"""Labelling governance: organisations, real-name review, prefixes, templates, lifecycle,
bulk registration, audit and statistics (issue 6). See docs/governance.md.

The registry sits beside the Handle services, not inside them: it keeps its own tables
(``db.py``) and reaches the identifier store only through ``AdminService``, so every write it
makes obeys the same HS_ADMIN rules, templates and audit as a write over the wire or REST.
"""
