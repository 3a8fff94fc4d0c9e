"""The DHIS2 protocol: HTTP, auth, retry, versions, wire names, metadata, import answers, periods.

Nothing in this package knows about mSupply or the LMIS programs; it imports only from
itself and ``dhis2_lmis.errors``. The package itself re-exports nothing, so importing one
module does not load the others.
"""
