"""finebench: CNN vs RNN vs Transformer on fine-grained vision, text and speech tasks.

The library behind the Snakemake workflow; every stage is also a ``python -m finebench`` command.
"""

__version__ = "0.1.0"
