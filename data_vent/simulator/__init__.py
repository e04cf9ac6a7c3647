"""A simulated OOINet on loopback: M2M, THREDDS and async results in the real shapes.

A tool beside :mod:`data_vent.ooi` (the harvester's side), never imported by it, so the
client is tested against an independent implementation of the API. Modules, bottom up:
``synthetic`` (Stream Engine NetCDF from a formula), ``streams`` (what a stream holds),
``configs`` (harvest YAMLs -> streams), ``ooinet`` (clock, requests, faults, counters),
``responses`` (bodies in the recorded shapes), ``routes`` (the route table),
``server`` (HTTP on loopback, ``serve_forever``).
"""

from data_vent.simulator.configs import streams_from_configs
from data_vent.simulator.ooinet import DEFAULT_START, OOINet, SimRequest
from data_vent.simulator.server import Simulator, serve_forever
from data_vent.simulator.streams import FAULTS, SimStream, stream_from_table

__all__ = [
    "DEFAULT_START",
    "FAULTS",
    "OOINet",
    "SimRequest",
    "SimStream",
    "Simulator",
    "serve_forever",
    "stream_from_table",
    "streams_from_configs",
]
