"""Kagiya installer and admin tools (``kagiya.tools``) and the ``kagiya`` command line."""
