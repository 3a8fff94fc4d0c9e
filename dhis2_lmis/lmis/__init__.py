"""The LMIS domain on top of the protocol: records, references, program readers, pushes, checks.

Built on ``dhis2_lmis.dhis2`` and ``dhis2_lmis.config``; never imports from ``dhis2_lmis.run``.
The package itself re-exports nothing: the public names are in ``dhis2_lmis``.
"""
