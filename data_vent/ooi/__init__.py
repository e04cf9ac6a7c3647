"""The OOI side: M2M client (``client``), THREDDS parsing (``thredds``), source observation
(``observe``), async requests as DB state (``requests_state``) and a loopback OOINet
simulator (``simulator``, ``sim_http``, ``sim_netcdf``). Errors are in ``errors``."""
