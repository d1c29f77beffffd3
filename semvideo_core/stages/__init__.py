"""One module per rule file (rules/{world,data,semminer,sad}.smk): the only place that joins I/O, models and
metrics. Every workflow script calls one function here; nothing in the library imports a stage."""
