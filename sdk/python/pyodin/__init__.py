"""pyodin: the Python SDK of Odin, for use inside jobs.

    import pyodin
    odin = pyodin.Odin(config="job.yml")
    odin.watch("url fetched", url)
    if odin.condition("url not empty", url != ""):
        odin.result("done", 0)

Standard library only: jobs run under the system Python.
"""

from __future__ import annotations

from .client import Odin
from .errors import OdinConfigError, OdinLimitError, OdinSDKError
from .limits import MAX_RECORD_BYTES, MAX_RECORDS_PER_RUN

__all__ = [
    "MAX_RECORDS_PER_RUN",
    "MAX_RECORD_BYTES",
    "Odin",
    "OdinConfigError",
    "OdinLimitError",
    "OdinSDKError",
]
__version__ = "0.1.0"
