"""Data only: Mattermost's reference architectures, prices and the IAM policies mmload needs.

The files are read and validated by :mod:`mmload.config.catalog`; this package holds no code, so
that its folder can be found from an installed mmload (``mmload.catalog.__path__``).
"""
