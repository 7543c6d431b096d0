"""`grove init`: starter PodCliqueSets for common inference layouts, rendered from jinja2 templates."""
