"""Neural models: SAD (and later MAD), and their losses."""
