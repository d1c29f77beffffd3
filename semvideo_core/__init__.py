"""SemVideo: reconstructing watched videos from fMRI. The numeric and neural code of the pipeline.

Importable without Snakemake; the workflow's scripts are thin wrappers around these modules.
"""

__version__ = "0.1.0"
