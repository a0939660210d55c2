"""The GREEN/YELLOW/RED status board of provinces and communes (see ``service``)."""
