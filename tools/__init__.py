"""The tools a user runs: training and evaluation (``train_net``), export, weight
conversion, visualisation and the loss plot, the demo, the embedded shapes dataset, and
the detectron2 installer ``make install`` runs. Benchmarks, the catalog sweep and the
drift experiment are in ``tools/dev``. Each module is also a script
(``python tools/train_net.py ...``); being a package lets them share code and lets the
tests import them as ``tools.<module>``."""
