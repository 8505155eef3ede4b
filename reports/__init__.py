"""Reports rendered from ``results.json`` files, never from live objects.

Writers are registered by format; ``write_reports`` renders the ones asked for.
"""

from reports.writers import WRITERS, load_results, write_reports

__all__ = ["WRITERS", "load_results", "write_reports"]
