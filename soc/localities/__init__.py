"""Provinces and communes/wards: the official catalogue and lookups (see ``catalogue``)."""

from soc.localities.catalogue import Catalogue, Locality, Province, Ward, catalogue, fold

__all__ = ["Catalogue", "Locality", "Province", "Ward", "catalogue", "fold"]
