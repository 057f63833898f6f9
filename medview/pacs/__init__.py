"""PACS connectivity: DIMSE (pynetdicom) and DICOMweb clients, the storage listener."""
