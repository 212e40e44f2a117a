"""The node hierarchy (issue 8): roles, prefix delegation, global resolution from the root,
the recursive caching node and supervision reporting to the parent node.

One job per module: ``roles`` (what each role defaults to), ``selection`` (which server of a
site answers a handle), ``cache`` (TTL entries on an injected clock), ``resolver`` (walking
prefix handles from the root), ``recursive`` (the caching node), ``db`` + ``delegation`` (a
parent's children), ``reporting`` (child reports, parent health), ``api`` (HTTP routes),
``service`` (what ``open_node`` attaches and the wire handler calls) and ``cli``.
"""
