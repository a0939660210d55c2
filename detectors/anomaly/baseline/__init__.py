"""The seasonal baseline model: fitting (``model``) and its files (``persistence``)."""
