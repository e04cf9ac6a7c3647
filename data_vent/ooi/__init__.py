"""The OOI side: M2M client (``client``), THREDDS parsing (``thredds``), source observation
(``observe``) and async requests as DB state (``requests_state``). Errors are in ``errors``.
The simulated OOINet the tests and the demo use is :mod:`data_vent.simulator`, beside this
package and never imported by it."""
