"""One process-wide lock around every use of the netCDF-C/HDF5 libraries.

They are not thread-safe, and xarray's own lock covers only data reads, not the metadata
reads of an open: concurrent harvest threads (and the in-process simulator writing files)
otherwise abort the process with "double free or corruption". Reentrant, so code holding it
may call into xarray, which is handed the same lock.
"""

from __future__ import annotations

import threading

HDF5_LOCK = threading.RLock()
