"""The README's main job: the whole SOC on its embedded defaults (see ``flows``)."""
