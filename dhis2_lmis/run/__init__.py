"""Running the bridge: the sync runner and its state, notifications, the command, the demo, frames.

The top layer: it uses the client and the domain below it, and nothing below imports it.
The package itself re-exports nothing: the public names are in ``dhis2_lmis``.
"""
