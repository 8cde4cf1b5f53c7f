"""Tools for the project's own measurements: the benchmarks (``bench_*``,
``benchmark_train``: scripts that print numbers), the real-compute catalog sweep
(``sweep``, ``make sweep``) and the timm drift experiment. Each is a script
(``python tools/dev/sweep.py ...``) and a module (``tools.dev.<module>``)."""
