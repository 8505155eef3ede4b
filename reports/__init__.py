"""Reports rendered from ``results.json`` files, never from live objects.

Writers are registered by format; ``write_reports`` renders the ones asked for.
"""

from reports.frame import results_frame
from reports.writers import WRITERS, load_results, write_reports

__all__ = ["WRITERS", "load_results", "results_frame", "write_reports"]
